"""Which blob store a service uses: `VERITY_BLOB_STORE=filesystem` (the default, below
`VERITY_BLOB_ROOT`) or `s3` (`VERITY_S3_BUCKET`, `VERITY_S3_ENDPOINT`, ...; docs/operations.md)."""

from __future__ import annotations

from services.common.blobstore import BlobStore, FilesystemBlobStore
from services.common.s3blobstore import S3BlobStore
from services.common.settings import CommonSettings


def open_blob_store(settings: CommonSettings) -> BlobStore:
    """The configured store; an S3 one connects on its first request, not here."""
    if settings.blob_store == "filesystem":
        return FilesystemBlobStore(settings.blob_root)
    if not settings.s3_bucket:
        raise ValueError("VERITY_BLOB_STORE=s3 needs VERITY_S3_BUCKET")
    secret = settings.s3_secret_access_key
    return S3BlobStore(
        settings.s3_bucket,
        endpoint=settings.s3_endpoint,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret else None,
        prefix=settings.s3_prefix,
    )
