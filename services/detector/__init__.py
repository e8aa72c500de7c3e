"""The detector service: decodes media, runs the detection models, emits results.

`app.py` composes it; `consumers.py` is its Kafka edge; `worker.py` runs each analysis in a
child process; `analysis/` scores a file per modality; `models/` holds what it scores with.
The offline work that builds the models is in the top-level `training/` package.
"""
