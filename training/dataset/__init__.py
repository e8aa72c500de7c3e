"""Reproducible real/synthetic speech dataset builder (issue 6, deliverable 2).

One command (`python -m training.dataset.build`) fetches human speech from Debian
packages, synthesises the same transcripts with several text-to-speech engines, runs both
classes through one identical processing chain, splits them speaker-, text- and engine-disjointly
and writes a manifest plus a shortcut report. See docs/dataset.md.

This package is a build-time tool (training/): the detector service never imports it, and it
needs only the project's own dependencies (PyAV); the synthesis engines run as separate programs.
"""
