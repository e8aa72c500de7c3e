"""How every Kafka client of a service connects: bootstrap servers plus TLS and SASL/SCRAM.

On a developer machine the broker is plain on loopback. On a cluster (Strimzi) it is a TLS
listener with SCRAM-SHA-512 users, the cluster CA mounted as a file, and the user's password
from its secret. One `KafkaConnection`, built from the settings, feeds the aiokafka producer,
admin and consumers as keyword options and FastStream's broker as its `security` object, so
the two can never disagree.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from services.common.settings import CommonSettings

_SASL = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}
_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


class KafkaConfigError(ValueError):
    """The Kafka settings contradict each other (e.g. SASL without a username)."""


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs or tracebacks
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def from_settings(cls, s: CommonSettings) -> KafkaConnection:
        connection = cls(
            bootstrap=s.kafka_bootstrap,
            security_protocol=s.kafka_security_protocol,
            sasl_mechanism=s.kafka_sasl_mechanism,
            username=s.kafka_username,
            password=s.kafka_password.get_secret_value() if s.kafka_password else None,
            ca_file=s.kafka_ca_file,
            cert_file=s.kafka_cert_file,
            key_file=s.kafka_key_file,
        )
        connection.check()
        return connection

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def check(self) -> None:
        """Fail at start-up, with the setting's name, rather than at the first reconnect."""
        if self.security_protocol not in _PROTOCOLS:
            raise KafkaConfigError(
                f"VERITY_KAFKA_SECURITY_PROTOCOL={self.security_protocol!r}: "
                f"one of {', '.join(_PROTOCOLS)}"
            )
        if self.uses_sasl and self.sasl_mechanism not in _SASL:
            raise KafkaConfigError(
                f"VERITY_KAFKA_SASL_MECHANISM={self.sasl_mechanism!r}: one of {', '.join(_SASL)}"
            )
        if self.uses_sasl and not (self.username and self.password):
            raise KafkaConfigError(
                f"VERITY_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                "VERITY_KAFKA_USERNAME and VERITY_KAFKA_PASSWORD"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise KafkaConfigError("VERITY_KAFKA_CERT_FILE and VERITY_KAFKA_KEY_FILE go together")
        if not self.uses_tls and (self.ca_file or self.cert_file):
            raise KafkaConfigError(
                "TLS files are set but VERITY_KAFKA_SECURITY_PROTOCOL is "
                f"{self.security_protocol}: use SSL or SASL_SSL"
            )

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_tls:
            return None
        context: ssl.SSLContext = create_ssl_context(
            cafile=str(self.ca_file) if self.ca_file else None,  # None: the system's CAs
            certfile=str(self.cert_file) if self.cert_file else None,
            keyfile=str(self.key_file) if self.key_file else None,
        )
        return context

    def options(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        return options

    def faststream_security(self) -> BaseSecurity | None:
        """The same connection as FastStream's KafkaBroker wants it."""
        if self.uses_sasl:
            assert self.username is not None  # check() made sure
            assert self.password is not None
            return _SASL[self.sasl_mechanism](
                self.username, self.password, ssl_context=self.ssl_context(), use_ssl=self.uses_tls
            )
        if self.uses_tls:
            return BaseSecurity(ssl_context=self.ssl_context(), use_ssl=True)
        return None


def connection_of(target: str | KafkaConnection) -> KafkaConnection:
    """Tests and benchmarks pass a plain bootstrap string; services pass their connection."""
    return target if isinstance(target, KafkaConnection) else KafkaConnection(target)
