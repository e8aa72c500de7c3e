"""Persistence: schema, event streams, read models, idempotency, tokens."""
