"""Settings every service reads from the environment (prefix `VERITY_`)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERITY_", extra="ignore")

    database_url: str = "postgresql://verity@127.0.0.1:15432/verity"
    kafka_bootstrap: str = "127.0.0.1:19092"
    # Partitions of each topic when a service creates it: the ceiling of consumer parallelism.
    kafka_partitions: int = 6
    blob_root: Path = Path(".run/blobs")
    # OpenTelemetry: traces are exported over OTLP/HTTP only when an endpoint is configured.
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    # The service's own HTTP port (health for every service, the API for intake).
    http_host: str = "127.0.0.1"
    http_port: int = 0
