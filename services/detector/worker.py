"""Run analyses in a child process: a real per-file timeout, and a crash stays contained.

A thread cannot be stopped, so a file that makes a decoder or a model hang would hold its
worker forever, and a native crash would take the service down. The analysis runs in one
long-lived child process (spawned, so no inherited locks or sessions); on timeout or death the
child is killed and a fresh one starts for the next file. The child imports the analyzer by
name, so models are loaded once per child, not per file.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import multiprocessing.connection
import os
from collections.abc import Callable
from typing import Any

from services.detector.errors import AnalysisError
from services.detector.media import MediaError


def _resolve(name: str) -> Callable[..., Any]:
    module, _, attr = name.rpartition(".")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return fn


def _serve(conn: multiprocessing.connection.Connection) -> None:
    """The child's loop: (function name, args) in; (ok, value | (code, message)) out."""
    while True:
        try:
            name, args = conn.recv()
        except EOFError:
            return
        try:
            conn.send((True, _resolve(name)(*args)))
        except MediaError as exc:
            conn.send((False, ("unsupported_media", str(exc))))
        except AnalysisError as exc:
            conn.send((False, (exc.code, exc.message)))
        except Exception as exc:  # a bug or a model failure: reported, the child lives on
            conn.send((False, ("analysis_error", f"{type(exc).__name__}: {exc}"[:500])))


class IsolatedWorker:
    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._lock = asyncio.Lock()

    def _ensure(self) -> multiprocessing.connection.Connection:
        if self._process is None or not self._process.is_alive() or self._conn is None:
            self.close()
            # one analysis per process and core: BLAS threads would only fight each other
            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
            os.environ.setdefault("OMP_NUM_THREADS", "1")
            parent, child = self._context.Pipe()
            self._process = self._context.Process(target=_serve, args=(child,), daemon=True)
            self._process.start()
            child.close()
            self._conn = parent
        return self._conn

    async def run(self, function: str, args: tuple[Any, ...], *, seconds: float) -> Any:
        """`function(*args)` in the child, or AnalysisError (timeout, crash, reported failure)."""
        async with self._lock:
            conn = self._ensure()
            conn.send((function, args))
            ready = await asyncio.to_thread(conn.poll, seconds)
            if not ready:
                self.close()
                raise AnalysisError("timeout", f"analysis did not finish within {seconds:g} s")
            try:
                ok, value = conn.recv()
            except (EOFError, OSError) as exc:
                self.close()
                raise AnalysisError("analysis_crashed", "the analysis process died") from exc
        if not ok:
            code, message = value
            raise AnalysisError(code, message)
        return value

    def close(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None
