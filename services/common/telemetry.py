"""Tracing and structured logs.

Traces flow HTTP request -> outbox row -> Kafka headers -> consumer span (W3C trace context).
Spans are exported over OTLP/HTTP only when an endpoint is configured: `VERITY_OTLP_ENDPOINT`,
or OpenTelemetry's own `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
(with `OTEL_EXPORTER_OTLP_HEADERS` etc., read by the exporter itself). `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `OTEL_SDK_DISABLED` are honoured as the
SDK defines them. Without an exporter tracing still runs, so log lines carry trace ids that
join a request with the events it caused.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_configured = False
_OTEL_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def setup_tracing(service: str, otlp_endpoint: str | None) -> None:
    """Install the global tracer provider once per process."""
    global _configured
    if _configured:
        return
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        _configured = True  # the API's no-op tracer stays in place
        return
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over this default name
    name = os.environ.get("OTEL_SERVICE_NAME") or f"verity-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    elif any(os.environ.get(v) for v in _OTEL_ENDPOINTS):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # reads OTEL_*
    trace.set_tracer_provider(provider)
    _configured = True


def context_from_headers(
    headers: Iterable[tuple[str, bytes]] | Mapping[str, str],
) -> context.Context:
    """The trace context a Kafka message carries (an empty context when it carries none)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    carrier = {k: v.decode(errors="replace") if isinstance(v, bytes) else v for k, v in items}
    return propagate.extract(carrier)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the service name and the current trace and span ids."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = value
        return json.dumps(entry, default=str)


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "faststream", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
