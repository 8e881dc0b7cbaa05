"""uvicorn's httptools protocol with the limits it lacks: a bounded request head, read in time.

httptools keeps no limit on the size of a request line and its headers (a 200 MB header was
read and answered), and uvicorn starts no timer before the first request of a connection, so a
client trickling its headers holds a connection for ever. Here a head over `MAX_HEAD_BYTES`
gets 431 and the connection is closed without reading further; a head not complete within
`LEADS_HEADER_TIMEOUT_SECONDS` gets 408 (or, before any byte, a plain close).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from intake.errors import error_body, status_code_name
from leadctl.settings import Settings

MAX_HEAD_BYTES = 32 * 1024


def _answer(status: int, reason: str, message: str) -> bytes:
    body = json.dumps(error_body([(None, message)], status_code_name(status))).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """One connection; between a request's first byte and its last header, the limits apply."""

    header_timeout: float | None = None  # read once per process from the settings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if BoundedHttpToolsProtocol.header_timeout is None:
            BoundedHttpToolsProtocol.header_timeout = Settings.from_env().header_timeout_seconds
        self._in_head = True  # a new connection starts with a request head
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        room = MAX_HEAD_BYTES - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Past the limit unless the head ends within the room left: feed that much, and
        # the rest (a body, a next request) only if the head is then complete.
        self._head_bytes = MAX_HEAD_BYTES
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._in_head:
            self._refuse(
                431,
                "Request Header Fields Too Large",
                f"the request line and headers are larger than {MAX_HEAD_BYTES // 1024} KiB",
            )
            return
        super().data_received(data[room:])

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_timer()
        super().on_headers_complete()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self.header_timeout or 10.0, self._head_too_slow
            )

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # an idle connection: nothing to answer
            return
        self._refuse(408, "Request Timeout", "the request headers took too long to arrive")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self.logger.warning("refused a request head: %s", message)
        self._disarm_head_timer()
        self.transport.write(_answer(status, reason, message))
        self.transport.close()
