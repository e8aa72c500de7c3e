"""A loopback OpenAI-compatible chat endpoint, standing in for the operator's LLM.

The LLM is not part of Verity (an operator points VERITY_LLM_URL at their own); this server
answers every /chat/completions with `reply` and records what it was sent.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


@contextlib.contextmanager
def chat_server(reply: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(the API base URL to use as VERITY_LLM_URL, the requests it received)."""
    seen: list[dict[str, Any]] = []

    class Chat(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            answer = {"choices": [{"message": {"role": "assistant", "content": reply}}]}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Chat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", seen
    finally:
        server.shutdown()
