"""POST /detect with `{"url": ...}`: fetch the media on the client's behalf, safely.

The URL passes the same SSRF guard as callbacks (public addresses only unless allowlisted),
the connection goes to the address the guard approved, redirects are not followed, and the
body streams into the blob store under the single-upload limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote

import httpx

from services.common import urlguard
from services.common.blobstore import BlobInfo, BlobStore, BlobTooLargeError

USER_AGENT = "Verity-Fetch/1"
# a URL path without a usable extension is named after the response's content type
EXTENSIONS = {
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/ogg": ".ogg",
    "audio/aac": ".aac",
    "audio/flac": ".flac",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/x-msvideo": ".avi",
    "video/x-matroska": ".mkv",
    "video/webm": ".webm",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
}


class FetchError(Exception):
    """The media could not be fetched; the message is for the client's 400 (or 413)."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class Fetched:
    filename: str
    blob: BlobInfo


def filename_for(url: str, content_type: str | None) -> str:
    name = PurePosixPath(unquote(httpx.URL(url).path)).name or "media"
    if PurePosixPath(name).suffix:
        return name
    ext = EXTENSIONS.get((content_type or "").split(";")[0].strip().lower(), "")
    return f"{name}{ext}"


async def fetch(
    url: str,
    blobs: BlobStore,
    key: str,
    *,
    allowlist: Sequence[urlguard.Network],
    max_bytes: int,
    timeout_seconds: float,
    resolve: urlguard.Resolver = urlguard.system_resolver,
) -> Fetched:
    try:
        target = await urlguard.check(url, allowlist, resolve, what="url")
    except urlguard.RefusedUrlError as exc:
        raise FetchError(str(exc)) from exc
    pinned, host = urlguard.pinned(target)
    headers = {"host": host, "user-agent": USER_AGENT}
    async with httpx.AsyncClient(
        follow_redirects=False, timeout=httpx.Timeout(timeout_seconds), trust_env=False
    ) as client:
        try:
            async with client.stream(
                "GET", pinned, headers=headers, extensions={"sni_hostname": target.host}
            ) as response:
                if response.status_code != 200:
                    raise FetchError(f"url answered HTTP {response.status_code}, not 200")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(_too_large(max_bytes), too_large=True)
                body: AsyncIterator[bytes] = response.aiter_bytes()
                info = await blobs.write(key, body, max_bytes=max_bytes)
                name = filename_for(url, response.headers.get("content-type"))
        except BlobTooLargeError as exc:
            raise FetchError(_too_large(max_bytes), too_large=True) from exc
        except httpx.TimeoutException as exc:
            raise FetchError(f"url did not answer within {timeout_seconds:g} s") from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"url could not be fetched: {type(exc).__name__}") from exc
    return Fetched(name, info)


def _too_large(max_bytes: int) -> str:
    return f"the media at url is larger than {max_bytes // (1024 * 1024)} MB"
