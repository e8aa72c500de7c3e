"""The intake service: the public HTTP API, uploads, and the batch saga.

`app.py` composes it; `api/` is the HTTP edge; `uploads/` reads what a client sends;
`domain/` holds the pure aggregates; `saga/` moves batches on; `store/` persists them;
`admin.py` is the operator CLI. The map: docs/architecture.md, "Where things are".
"""
