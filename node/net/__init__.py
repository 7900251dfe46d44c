"""The node's listening side, below HTTP: who may hold a connection, and for how long.

aiohttp's server has no header-read timeout, no body-rate floor and no connection caps, so a
client could hold a validator's file descriptors with connections that trickle a header line at a
time, or its submission reservations with uploads of one byte every few seconds. This package sits
between the listening socket and aiohttp's protocol:

* ``framing.RequestFraming`` follows HTTP/1.1 request boundaries in the raw bytes (head, then a
  ``Content-Length`` or chunked body) without interpreting them — aiohttp still parses every request;
* ``guard.ConnectionGuard`` admits or refuses each accepted connection (caps in total and per
  network, /24 for IPv4 and /64 for IPv6, inside a file-descriptor budget), keeps validator peers
  and trusted clients in a pool of their own, cuts connections whose head is not complete within
  ``header_timeout_ms`` or whose body falls below ``min_body_rate``, and sheds public connections
  when the process runs short of descriptors;
* ``site.GuardedSite`` listens with every connection wrapped in a ``guard.GuardedProtocol``.

Policy numbers come from ``limits`` in config.json (``node/config.py``); docs/NODE.md §13 and
docs/RELIABILITY.md ("Hostile clients") describe them and what they were measured against.
"""
