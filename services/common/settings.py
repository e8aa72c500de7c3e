"""Settings every service reads from the environment (prefix `VERITY_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topics import PARTITIONS


class CommonSettings(BaseSettings):
    # an empty variable (`value: ""` in a manifest) means "not set", never "the empty path"
    model_config = SettingsConfigDict(env_prefix="VERITY_", extra="ignore", env_ignore_empty=True)

    database_url: str = "postgresql://verity@127.0.0.1:15432/verity"
    kafka_bootstrap: str = "127.0.0.1:19092"
    # Partitions of each topic when a service creates it: the ceiling of consumer parallelism.
    kafka_partitions: int = PARTITIONS
    # Whether services create missing topics at start-up. Off in Kubernetes, where Strimzi's
    # KafkaTopic resources own them (replicas, min.insync) and the users' ACLs forbid creating.
    kafka_manage_topics: bool = True
    kafka_replication_factor: int = 1
    # How to reach the brokers: plain on a developer machine; SASL/SCRAM over TLS on a cluster.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ca_file: Path | None = None  # the cluster CA (Strimzi: <cluster>-cluster-ca-cert)
    kafka_cert_file: Path | None = None  # a client certificate, for mutual TLS
    kafka_key_file: Path | None = None
    # Where uploads and artifacts live: a local directory, or an S3-compatible bucket.
    blob_store: Literal["filesystem", "s3"] = "filesystem"
    blob_root: Path = Path(".run/blobs")
    s3_bucket: str | None = None
    s3_endpoint: str | None = None  # e.g. http://minio.verity:9000; None = AWS's own
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_prefix: str = ""  # keys are stored below this prefix, so one bucket can serve several
    # OpenTelemetry: traces are exported over OTLP/HTTP only when an endpoint is configured.
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    # The service's own HTTP port (health for every service, the API for intake).
    http_host: str = "127.0.0.1"
    http_port: int = 0
    # On SIGTERM, open requests and in-flight message handlers (a detector's analysis) get this
    # long to finish. Keep it below the pod's terminationGracePeriodSeconds (intake: above
    # `Prefer: wait`'s 120 s; detector: above VERITY_ANALYSIS_TIMEOUT_SECONDS).
    shutdown_grace_seconds: float = 30.0
