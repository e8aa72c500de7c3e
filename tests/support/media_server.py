"""A loopback HTTP server that serves one media file, for detects by URL.

Intake refuses non-public addresses unless `VERITY_CALLBACK_ALLOWLIST` names them: run it with
`127.0.0.0/8` to let it fetch from here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def media_server(path: str, body: bytes) -> AsyncIterator[str]:
    """A loopback HTTP server that answers GET `path` with `body` (and 404 otherwise)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        found = request.split(b" ")[1].decode() == path
        status, payload = ("200 OK", body) if found else ("404 Not Found", b"")
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(payload)}\r\n"
            "Content-Type: audio/wav\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"
