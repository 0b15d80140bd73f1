"""A local stand-in for an Azure OpenAI judge deployment, for ``TaskAdherenceJudge`` (azure-ai-evaluation).

Speaks the Azure OpenAI chat-completions route the SDK calls —
``POST /openai/deployments/{deployment}/chat/completions?api-version=…`` with an Entra ID bearer token —
and answers with the JSON verdict the task-adherence prompt asks for. Which verdict is scripted by the
test: ``verdicts`` holds ``(text, verdict)`` pairs, and the first whose text appears in the request's
messages answers (else ``default``), so one judge can grade several episodes differently in any order.
Requests without ``api-version`` or a bearer token are refused as Azure would (400 / 401).
Every request is recorded.

The project's own model server cannot stand in for the judge: it serves ``/v1/chat/completions`` (not
Azure's deployment routes) and its models learn tool calls, not verdicts.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PASS = {
    "score": 1,
    "reason": "The agent called the right tool and answered the request.",
    "status": "completed",
}


class JudgeStandIn:
    def __init__(self, deployment: str = "judge-gpt-4o") -> None:
        self.deployment = deployment
        self.lock = threading.Lock()
        self.verdicts: list[tuple[str, dict[str, Any]]] = []
        self.default: dict[str, Any] = dict(PASS)
        self.requests: list[dict[str, Any]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="judge-standin", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> JudgeStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        with self.lock:
            self.verdicts.clear()
            self.default = dict(PASS)
            self.requests.clear()

    def answer(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(path)
        with self.lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
            if parts.path != f"/openai/deployments/{self.deployment}/chat/completions":
                return 404, _error("DeploymentNotFound", f"no deployment at {parts.path}")
            if "api-version" not in parse_qs(parts.query):
                return 400, _error(
                    "MissingApiVersionParameter", "The api-version query parameter is required."
                )
            if not headers.get("authorization", "").startswith("Bearer "):
                return 401, _error("PermissionDenied", "an Entra ID bearer token is required")
            prompt = json.dumps(body.get("messages", []) if isinstance(body, dict) else [])
            verdict = next((v for text, v in self.verdicts if text in prompt), self.default)
        return 200, {
            "id": "chatcmpl-judge",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.deployment,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": json.dumps(verdict)},
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                del format, args

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                status, payload = server.answer(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
