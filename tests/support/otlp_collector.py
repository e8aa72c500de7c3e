"""A loopback OTLP/HTTP trace receiver: what a service exported, decoded from protobuf."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass(frozen=True)
class ExportedSpan:
    service_name: str
    name: str


@contextlib.contextmanager
def otlp_collector() -> Iterator[tuple[str, list[ExportedSpan]]]:
    """(the endpoint to use as OTEL_EXPORTER_OTLP_ENDPOINT, the spans received so far)."""
    spans: list[ExportedSpan] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    attributes = {
                        a.key: a.value.string_value for a in resource_spans.resource.attributes
                    }
                    spans.extend(
                        ExportedSpan(attributes.get("service.name", ""), span.name)
                        for scope in resource_spans.scope_spans
                        for span in scope.spans
                    )
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", spans
    finally:
        server.shutdown()
        server.server_close()
