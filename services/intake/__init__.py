"""The intake service: the public HTTP API, uploads, and the batch saga."""
