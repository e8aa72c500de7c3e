"""The HTTP edge: controllers, auth, the wire shapes, errors as problem+json."""
