"""The models the detector serves: ONNX Runtime wrappers, the trained heads, their data.

Code: `loaded.py` (each model once per worker process), `onnx_models.py` (AASIST, CAM++,
Silero VAD), `features.py` / `audio_features.py` (their inputs), `logistic.py` (the trained
heads), `image_model.py` (CLIP + faces), `tracing.py`, `transcripts.py` (Whisper),
`packaged.py` (model files fetched from a pinned PyPI wheel), `thresholds.py`,
`watermark.py` (Perth's watermark decoder).
Data: `*_head.json` and `identity.json` (trained here), `onnx/` (built here from pinned wheels),
a model card per model (`*.md`) and `SOURCES.md`. What builds them lives in `training/`.
"""
