"""KafkaConnection: what each protocol hands aiokafka and FastStream, and what it refuses."""

from __future__ import annotations

import datetime as dt
import os
import ssl
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from services.common.kafka_client import KafkaConfigError, KafkaConnection, connection_of
from services.common.settings import CommonSettings

BOOTSTRAP = "kafka-0.example:9093,kafka-1.example:9093"


@pytest.fixture(scope="module")
def pem_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A self-signed CA and a client certificate/key signed by it (PEM), made in-process."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, public_key: Any, *, ca: bool) -> Any:
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("test-ca"))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )

    d = tmp_path_factory.mktemp("pem")
    ca_file, cert_file, key_file = d / "ca.pem", d / "client.pem", d / "client.key"
    pem = serialization.Encoding.PEM
    ca_file.write_bytes(certificate("test-ca", ca_key.public_key(), ca=True).public_bytes(pem))
    cert_file.write_bytes(certificate("client", key.public_key(), ca=False).public_bytes(pem))
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


def _sasl(protocol: str = "SASL_SSL", **kw: Any) -> KafkaConnection:
    return KafkaConnection(BOOTSTRAP, protocol, username="verity-wallet", password="s3cret", **kw)


def test_plaintext_is_just_the_bootstrap() -> None:
    conn = KafkaConnection(BOOTSTRAP)
    conn.check()
    assert conn.options() == {"bootstrap_servers": BOOTSTRAP, "security_protocol": "PLAINTEXT"}
    assert conn.ssl_context() is None
    assert conn.faststream_security() is None
    assert (conn.uses_tls, conn.uses_sasl) == (False, False)


def test_ssl_verifies_the_broker_against_the_ca(pem_files: tuple[Path, Path, Path]) -> None:
    ca_file, _, _ = pem_files
    conn = KafkaConnection(BOOTSTRAP, "SSL", ca_file=ca_file)
    conn.check()
    options = conn.options()
    assert set(options) == {"bootstrap_servers", "security_protocol", "ssl_context"}
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test-ca"),),)]
    security = conn.faststream_security()
    assert type(security) is BaseSecurity
    assert security.use_ssl is True
    assert isinstance(security.ssl_context, ssl.SSLContext)


def test_ssl_without_a_ca_file_uses_the_system_cas() -> None:
    conn = KafkaConnection(BOOTSTRAP, "SSL")
    conn.check()
    context = conn.options()["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_mutual_tls_loads_the_client_certificate(pem_files: tuple[Path, Path, Path]) -> None:
    ca_file, cert_file, key_file = pem_files
    conn = KafkaConnection(
        BOOTSTRAP, "SSL", ca_file=ca_file, cert_file=cert_file, key_file=key_file
    )
    conn.check()
    assert isinstance(conn.ssl_context(), ssl.SSLContext)


def test_mutual_tls_with_a_key_that_does_not_match_fails(
    pem_files: tuple[Path, Path, Path],
) -> None:
    ca_file, cert_file, _ = pem_files
    conn = KafkaConnection(BOOTSTRAP, "SSL", cert_file=cert_file, key_file=ca_file)  # no key
    with pytest.raises(ssl.SSLError):
        conn.ssl_context()


def test_sasl_ssl_options(pem_files: tuple[Path, Path, Path]) -> None:
    conn = _sasl(ca_file=pem_files[0])
    conn.check()
    options = conn.options()
    assert isinstance(options.pop("ssl_context"), ssl.SSLContext)
    assert options == {
        "bootstrap_servers": BOOTSTRAP,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "verity-wallet",
        "sasl_plain_password": "s3cret",
    }
    security = conn.faststream_security()
    assert type(security) is SASLScram512
    assert (security.username, security.password, security.use_ssl) == (
        "verity-wallet",
        "s3cret",
        True,
    )
    assert isinstance(security.ssl_context, ssl.SSLContext)


def test_sasl_plaintext_has_no_tls() -> None:
    conn = _sasl("SASL_PLAINTEXT")
    conn.check()
    options = conn.options()
    assert "ssl_context" not in options
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    security = conn.faststream_security()
    assert type(security) is SASLScram512
    assert security.use_ssl is False
    assert security.ssl_context is None


@pytest.mark.parametrize(
    ("mechanism", "security_type"),
    [("SCRAM-SHA-512", SASLScram512), ("SCRAM-SHA-256", SASLScram256), ("PLAIN", SASLPlaintext)],
)
def test_each_mechanism_has_its_faststream_type(mechanism: str, security_type: type) -> None:
    conn = _sasl(sasl_mechanism=mechanism)
    conn.check()
    assert conn.options()["sasl_mechanism"] == mechanism
    assert type(conn.faststream_security()) is security_type


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_faststream_and_aiokafka_get_the_same_connection(protocol: str, mechanism: str) -> None:
    """What FastStream makes of `faststream_security()` is what the aiokafka clients get."""
    sasl = protocol.startswith("SASL_")
    conn = KafkaConnection(
        BOOTSTRAP,
        protocol,
        sasl_mechanism=mechanism,
        username="u" if sasl else None,
        password="p" if sasl else None,
    )
    conn.check()
    ours = conn.options()
    theirs = {"security_protocol": "PLAINTEXT", **parse_security(conn.faststream_security())}
    for options in (ours, theirs):
        options.pop("bootstrap_servers", None)
        context = options.pop("ssl_context", None)
        assert (context is not None) == conn.uses_tls
    assert theirs == ours


@pytest.mark.parametrize(
    ("username", "password"), [(None, None), ("u", None), (None, "p"), ("u", ""), ("", "p")]
)
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_needs_username_and_password(
    protocol: str, username: str | None, password: str | None
) -> None:
    conn = KafkaConnection(BOOTSTRAP, protocol, username=username, password=password)
    with pytest.raises(KafkaConfigError, match="VERITY_KAFKA_USERNAME and VERITY_KAFKA_PASSWORD"):
        conn.check()


@pytest.mark.parametrize(
    ("cert", "key"), [(Path("/etc/kafka/user.crt"), None), (None, Path("/etc/kafka/user.key"))]
)
def test_client_certificate_and_key_go_together(cert: Path | None, key: Path | None) -> None:
    conn = KafkaConnection(BOOTSTRAP, "SSL", cert_file=cert, key_file=key)
    with pytest.raises(KafkaConfigError, match="CERT_FILE and VERITY_KAFKA_KEY_FILE go together"):
        conn.check()


@pytest.mark.parametrize(
    ("ca", "cert", "key"),
    [
        (Path("ca.pem"), None, None),
        (None, Path("c.pem"), Path("c.key")),
        (Path("ca.pem"), Path("c.pem"), Path("c.key")),
    ],
)
@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_tls_files_without_tls_are_refused(
    protocol: str, ca: Path | None, cert: Path | None, key: Path | None
) -> None:
    conn = KafkaConnection(
        BOOTSTRAP, protocol, username="u", password="p", ca_file=ca, cert_file=cert, key_file=key
    )
    with pytest.raises(KafkaConfigError, match=f"TLS files are set but .* is {protocol}"):
        conn.check()


def test_unknown_protocol_or_mechanism_is_refused_by_name() -> None:
    with pytest.raises(KafkaConfigError, match="VERITY_KAFKA_SECURITY_PROTOCOL='sasl_ssl'"):
        KafkaConnection(BOOTSTRAP, "sasl_ssl").check()
    with pytest.raises(KafkaConfigError, match="VERITY_KAFKA_SASL_MECHANISM='GSSAPI'"):
        _sasl(sasl_mechanism="GSSAPI").check()
    _sasl().check()  # the defaults are fine
    KafkaConnection(BOOTSTRAP, "SSL", sasl_mechanism="ignored without SASL").check()


def test_the_password_stays_out_of_repr() -> None:
    conn = _sasl()
    assert "s3cret" not in repr(conn)
    assert "verity-wallet" in repr(conn)


def test_connection_of_wraps_a_bootstrap_string() -> None:
    assert connection_of("127.0.0.1:19092") == KafkaConnection("127.0.0.1:19092")
    conn = _sasl()
    assert connection_of(conn) is conn


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No VERITY_* setting of the calling shell reaches the settings under test."""
    for name in [n for n in os.environ if n.startswith("VERITY_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_from_settings_defaults_to_plaintext(env: pytest.MonkeyPatch) -> None:
    settings = CommonSettings()
    conn = KafkaConnection.from_settings(settings)
    assert conn == KafkaConnection("127.0.0.1:19092")
    assert (settings.kafka_manage_topics, settings.kafka_replication_factor) == (True, 1)


def test_from_settings_reads_the_environment(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca, cert, key = tmp_path / "ca.crt", tmp_path / "user.crt", tmp_path / "user.key"
    for name, value in {
        "VERITY_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "VERITY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "VERITY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "VERITY_KAFKA_USERNAME": "verity-intake",
        "VERITY_KAFKA_PASSWORD": "from-the-secret",
        "VERITY_KAFKA_CA_FILE": str(ca),
        "VERITY_KAFKA_CERT_FILE": str(cert),
        "VERITY_KAFKA_KEY_FILE": str(key),
        "VERITY_KAFKA_MANAGE_TOPICS": "false",
        "VERITY_KAFKA_REPLICATION_FACTOR": "3",
    }.items():
        env.setenv(name, value)
    settings = CommonSettings()
    assert "from-the-secret" not in repr(settings)
    assert (settings.kafka_manage_topics, settings.kafka_replication_factor) == (False, 3)
    assert KafkaConnection.from_settings(settings) == KafkaConnection(
        bootstrap=BOOTSTRAP,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        username="verity-intake",
        password="from-the-secret",
        ca_file=ca,
        cert_file=cert,
        key_file=key,
    )


def test_empty_variables_mean_unset(env: pytest.MonkeyPatch) -> None:
    """A manifest's `value: ""` must not become the current directory or an empty user."""
    for name in ("CA_FILE", "CERT_FILE", "KEY_FILE", "USERNAME", "PASSWORD"):
        env.setenv(f"VERITY_KAFKA_{name}", "")
    assert KafkaConnection.from_settings(CommonSettings()) == KafkaConnection("127.0.0.1:19092")


def test_from_settings_checks(env: pytest.MonkeyPatch) -> None:
    env.setenv("VERITY_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    env.setenv("VERITY_KAFKA_USERNAME", "verity-wallet")  # no password
    with pytest.raises(KafkaConfigError, match="VERITY_KAFKA_PASSWORD"):
        KafkaConnection.from_settings(CommonSettings())
    env.setenv("VERITY_KAFKA_PASSWORD", "")  # an empty secret is no password either
    with pytest.raises(KafkaConfigError, match="VERITY_KAFKA_PASSWORD"):
        KafkaConnection.from_settings(CommonSettings())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VERITY_KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("VERITY_KAFKA_SASL_MECHANISM", "SCRAM-SHA-1"),
        ("VERITY_KAFKA_MANAGE_TOPICS", "perhaps"),
    ],
)
def test_settings_refuse_unknown_values(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("VERITY_").lower()):
        CommonSettings()
