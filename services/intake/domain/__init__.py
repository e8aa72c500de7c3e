"""The aggregates, pure: decide and evolve, no I/O."""
