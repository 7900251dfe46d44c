"""Where HTTP/1.1 requests begin and end in a connection's raw bytes (pure: no I/O).

The guard needs only the boundaries — is a request head still arriving, is a body arriving, or is
the connection between requests — to apply the header timeout and the body rate. ``RequestFraming``
follows them the way RFC 9112 §6 frames a request: the head ends at the first empty line; the body
is ``Content-Length`` bytes, or chunked (``Transfer-Encoding`` ending in ``chunked``), or empty.
It never judges a request: aiohttp parses each one and answers 400 to what it refuses. Should the
two ever disagree about a boundary, the worst outcome is a cut connection, never an accepted
request.
"""

from __future__ import annotations

from enum import Enum

from chain.numbers import parse_decimal

MAX_HEAD_BYTES = 64 * 1024        # aiohttp refuses heads far smaller (8 KiB lines, 32 KiB fields)


class Phase(Enum):
    IDLE = "idle"                 # between requests (or before the first byte)
    HEAD = "head"                 # request line and header fields arriving
    BODY = "body"                 # the body arriving


class FramingError(Exception):
    """The bytes cannot be followed (a head past ``MAX_HEAD_BYTES``, a broken chunk size)."""


class RequestFraming:
    """Feed every received chunk to ``feed``; read ``phase``, ``body_bytes`` and ``requests``."""

    def __init__(self) -> None:
        self.phase = Phase.IDLE
        self.requests = 0             # heads completed so far
        self.body_bytes = 0           # body bytes of the current request so far
        self._head = bytearray()
        self._left = 0                # Content-Length bytes still to come
        self._chunked = False
        self._chunk_state = "size"    # size | data | data_end | trailer
        self._line = bytearray()

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.phase is not Phase.BODY:
                view = self._feed_head(view)
            elif self._chunked:
                view = self._feed_chunked(view)
            else:
                take = min(self._left, len(view))
                self._left -= take
                self.body_bytes += take
                view = view[take:]
                if self._left == 0:
                    self._end_request()

    def _feed_head(self, view: memoryview) -> memoryview:
        if self.phase is Phase.IDLE:
            while view and not self._head and bytes(view[:1]) in (b"\r", b"\n"):
                view = view[1:]       # empty lines before a request line are ignored (RFC 9112 §2.2)
            if not view:
                return view
            self.phase = Phase.HEAD
        start = max(0, len(self._head) - 3)
        self._head += view
        end = self._head.find(b"\r\n\r\n", start)
        size = 4
        bare = self._head.find(b"\n\n", start)
        if bare != -1 and (end == -1 or bare < end):
            end, size = bare, 2
        if end == -1:
            if len(self._head) > MAX_HEAD_BYTES:
                raise FramingError("request head too large")
            return view[len(view):]
        rest = len(self._head) - (end + size)
        head = bytes(self._head[:end])
        self._head.clear()
        self._start_body(head)
        return view[len(view) - rest:]

    def _start_body(self, head: bytes) -> None:
        self.requests += 1
        self.body_bytes = 0
        length = 0
        self._chunked = False
        for line in head.split(b"\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                parsed = parse_decimal(value.strip().decode("latin-1"), 18)
                length = parsed if parsed is not None else 0
            elif name == b"transfer-encoding":
                self._chunked = value.strip().lower().endswith(b"chunked")
        if self._chunked:
            self.phase = Phase.BODY
            self._chunk_state = "size"
            self._line.clear()
        elif length > 0:
            self.phase = Phase.BODY
            self._left = length
        else:
            self._end_request()

    def _feed_chunked(self, view: memoryview) -> memoryview:
        while view:
            if self._chunk_state in ("size", "data_end", "trailer"):
                newline = bytes(view).find(b"\n")
                if newline == -1:
                    self._line += view
                    self.body_bytes += len(view)
                    if len(self._line) > 4096:
                        raise FramingError("chunk line too long")
                    return view[len(view):]
                self._line += view[:newline]
                self.body_bytes += newline + 1
                view = view[newline + 1:]
                line = bytes(self._line).strip()
                self._line.clear()
                if self._chunk_state == "size":
                    size_text = line.split(b";", 1)[0].strip()
                    try:
                        size = int(size_text, 16) if size_text and size_text.isalnum() and size_text.isascii() else -1
                    except ValueError:
                        size = -1
                    if size < 0:
                        raise FramingError("bad chunk size")
                    if size == 0:
                        self._chunk_state = "trailer"
                    else:
                        self._left, self._chunk_state = size, "data"
                elif self._chunk_state == "data_end":
                    self._chunk_state = "size"
                elif not line:                     # the empty line after the trailer fields
                    self._end_request()
                    return view
            else:
                take = min(self._left, len(view))
                self._left -= take
                self.body_bytes += take
                view = view[take:]
                if self._left == 0:
                    self._chunk_state = "data_end"
        return view

    def _end_request(self) -> None:
        self.phase = Phase.IDLE
        self._left = 0
        self._chunked = False
