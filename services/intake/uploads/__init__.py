"""What a client sends, read safely before anything is recorded."""
