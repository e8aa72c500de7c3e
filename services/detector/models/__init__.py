"""Detector model artefacts: ONNX files, their provenance, and the scripts that build them.

Nothing here is imported by the service at run time except the data in `onnx/`; the scripts
(`export.py`, `reference.py`) need torch and run only in a throwaway environment.
"""
