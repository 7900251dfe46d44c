"""TEST ONLY: log every byte the gateway receives (``test_wire_log_file`` in the gateway config).

The privacy tests of voter-held keys (tests/gateway/test_voter_held_browser.py) run a gateway built
this way and then read the log: no request that carries the session cookie may carry the voter's key
or token. The log holds everything a citizen types — phone numbers, codes — in clear: never set
``test_wire_log_file`` on a real gateway.

Each chunk read from a connection is one line: ``<connection number> <hex of the bytes>``.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import IO, Any

from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("veche.gateway.wirelog")
_connections = itertools.count(1)


class WireLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = path.open("a", encoding="ascii")
        log.warning("TEST MODE: every byte received is written to %s (never on a real gateway)", path)

    def write(self, connection: int, data: bytes) -> None:
        self._file.write(f"{connection} {data.hex()}\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def logging_handler_factory(server: Any, wire: WireLog) -> Any:
    """A protocol factory for ``loop.create_server``: aiohttp's request handler, teeing what it reads."""

    class LoggingRequestHandler(RequestHandler):
        def data_received(self, data: bytes) -> None:
            wire.write(self._wire_connection, data)
            super().data_received(data)

        def connection_made(self, transport: Any) -> None:
            self._wire_connection = next(_connections)
            super().connection_made(transport)

    def factory() -> LoggingRequestHandler:
        return LoggingRequestHandler(server, loop=server._loop, **server._kwargs)

    return factory


def read_requests(path: Path) -> list[bytes]:
    """The requests in a wire log: each connection's bytes, split where a request line starts."""
    streams: dict[int, bytearray] = {}
    for line in path.read_text(encoding="ascii").splitlines():
        number, _, data = line.partition(" ")
        streams.setdefault(int(number), bytearray()).extend(bytes.fromhex(data))
    requests: list[bytes] = []
    for stream in streams.values():
        start = 0
        for index in range(1, len(stream)):
            if stream[index - 1] == 0x0A and bytes(stream[index:index + 4]) in (b"GET ", b"POST", b"HEAD", b"OPTI"):
                requests.append(bytes(stream[start:index]))
                start = index
        requests.append(bytes(stream[start:]))
    return requests
