"""The one error an analysis reports: a code and a message for the detect's DetectFailed.

Raised by the analyzers and the model loaders inside the worker's child process, and by the
worker itself (timeout, crash); the Kafka edge (consumers.py) turns it into DetectFailed or
VoiceprintFailed. A leaf module, so that analysis and models need not import the worker.
"""

from __future__ import annotations


class AnalysisError(Exception):
    """The analysis did not produce a result; `code` and the message go into DetectFailed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
