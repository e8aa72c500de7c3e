"""The detector service: decodes media, runs the detection models, emits results."""
