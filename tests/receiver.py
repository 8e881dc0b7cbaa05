"""A real HTTP webhook receiver on 127.0.0.1 for the tests: records each request, and can fail,
hang, redirect or answer with an endless body."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-leadctl-signature", ""), expected)


@dataclass
class Receiver:
    """`fail_first` requests get a 500; `mode` is `ok`, `fail`, `hang`, `redirect` (to
    `location`) or `flood` (a 200, then body bytes until the client hangs up)."""

    fail_first: int = 0
    mode: str = "ok"
    status: int = 200
    location: str = ""
    received: list[Received] = field(default_factory=list)
    flood_sent: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _release: threading.Event = field(default_factory=threading.Event)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/leadctl"

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # the http.server API's name
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._cond:
                    receiver.received.append(got)
                    count = len(receiver.received)
                    receiver._cond.notify_all()
                if count <= receiver.fail_first or receiver.mode == "fail":
                    self._answer(500, b"try later")
                elif receiver.mode == "hang":
                    receiver._release.wait(30)  # until the test ends
                    self.close_connection = True
                elif receiver.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", receiver.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif receiver.mode == "flood":
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", str(10 * 1024**3))  # 10 GB promised
                    self.end_headers()
                    chunk = b"x" * 65536
                    deadline = time.monotonic() + 30
                    try:
                        while time.monotonic() < deadline and not receiver._release.is_set():
                            self.wfile.write(chunk)
                            receiver.flood_sent += len(chunk)
                    except OSError:
                        pass  # the client hung up: what a bounded reader does
                    self.close_connection = True
                else:
                    self._answer(receiver.status, b"ok")

            def _answer(self, status: int, text: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.received)

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
