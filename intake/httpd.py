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
        self._ended = False  # a message ended within the bytes being fed
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # A head is counted from its first byte: from the connection's start, then from the end
        # of the message before it (on_message_complete). Counting from on_message_begin, which
        # httptools calls while the first chunk is fed, let a head grow to twice the limit.
        if not self._in_head:  # a body: its own limits apply
            super().data_received(data)
            # A next request may begin within this read, after the body's end: its share of the
            # read (already in memory) is not known, so its count starts with the next read.
            return
        fed = data[: MAX_HEAD_BYTES - self._head_bytes]
        self._head_bytes += len(fed)
        self._ended = False
        super().data_received(fed)
        if self.transport.is_closing() or len(fed) == len(data):
            return
        if self._in_head and not self._ended:  # this head goes on past the limit
            self._refuse(
                431,
                "Request Header Fields Too Large",
                f"the request line and headers are larger than {MAX_HEAD_BYTES // 1024} KiB",
            )
        else:  # the head ended within the room (a body follows, or pipelined requests)
            self.data_received(data[len(fed) :])

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes, self._ended = True, 0, True  # the next byte starts a head

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
