"""Log lines are JSON and carry the trace they were written in."""

from __future__ import annotations

import json
import logging

from opentelemetry import trace

from services.common.telemetry import JsonFormatter, context_from_headers, setup_tracing


def _record(message: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("verity.test", logging.INFO, __file__, 1, message, (), None)
    record.fields = fields
    return record


def test_log_line_is_json_with_trace_and_fields() -> None:
    setup_tracing("test", None)
    formatter = JsonFormatter("wallet")
    with trace.get_tracer("test").start_as_current_span("work") as span:
        line = json.loads(formatter.format(_record("reserved", batch_id="b1")))
    assert line["service"] == "wallet"
    assert line["message"] == "reserved"
    assert line["batch_id"] == "b1"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    outside = json.loads(formatter.format(_record("idle")))
    assert "trace_id" not in outside


def test_trace_context_is_read_from_kafka_headers() -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = [("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01".encode())]
    span = trace.get_current_span(context_from_headers(headers))
    assert format(span.get_span_context().trace_id, "032x") == trace_id
    empty = trace.get_current_span(context_from_headers([]))
    assert not empty.get_span_context().is_valid
