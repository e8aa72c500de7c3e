"""Functions the isolated-worker tests run in the child process (importable by name)."""

from __future__ import annotations

import os
import time

from services.detector.media import MediaError


def echo(value: object) -> object:
    return value


def sleep_then(seconds: float, value: object) -> object:
    time.sleep(seconds)
    return value


def crash() -> None:
    os._exit(3)


def bad_media() -> None:
    raise MediaError("cannot open media: Invalid data found when processing input")


def bug() -> None:
    raise ZeroDivisionError("division by zero")
