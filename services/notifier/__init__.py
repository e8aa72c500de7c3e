"""The notifier service: signed, retried callbacks when work reaches a terminal state."""
