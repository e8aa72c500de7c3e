"""Offline work: datasets, training, export, evaluation. The services never import it."""
