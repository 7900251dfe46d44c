"""Benchmark the gateway's page rendering: server time per page, one client, no network hops.

    .venv/bin/python scripts/bench_render.py [--rounds 300]

Runs the gateway in this process against the test suite's in-process fake nodes (the harness of
tests/gateway: two districts, five campaigns, one of them closed with a vote), logs a citizen in,
and for each page measures the time of ``--rounds`` GET requests over loopback (the median, in
milliseconds; the client's own cost is included and is the same for every variant). Pages that the
gateway caches (a ballot while voting is open) show the cache hit; the others render every time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.gateway.harness import TX_HASH, gateway_world  # noqa: E402

PAGES = ["/", "/login", "/c/ib-test/d/north", "/c/kids-test/d/south", "/results/to-close", "/dashboard",
         "/verify", "/check", "/transparency", "/c/to-close/initiatives/c1"]


async def measure(rounds: int) -> list[tuple[str, float, int]]:
    with tempfile.TemporaryDirectory(prefix="veche-render-") as tmp:
        async with gateway_world(Path(tmp)) as world:
            citizen = world.client()
            try:
                await citizen.login()
                _, page = await citizen.vote("to-close", "north", ["c1"])
                receipt = "/receipt/" + TX_HASH.search(page).group(1)  # type: ignore[union-attr]
                world.close_campaign("to-close")
                world.gateway.chain.invalidate()
                rows = []
                for path in PAGES + ([receipt] if receipt else []):
                    for lang in ("ru", "en"):
                        url = path + ("?lang=en" if lang == "en" else "?lang=ru")
                        status, html = await citizen.get(url)
                        if status >= 400:
                            raise RuntimeError(f"{url}: HTTP {status}")
                        times = []
                        for _ in range(rounds):
                            started = time.perf_counter()
                            await citizen.get(url)
                            times.append(time.perf_counter() - started)
                        rows.append((url, statistics.median(times) * 1000, len(html.encode())))
                return rows
            finally:
                await citizen.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.rounds))
    print(f"{'page':<40} {'median ms':>10} {'bytes':>8}")
    for url, ms, size in rows:
        print(f"{url:<40} {ms:>10.3f} {size:>8}")
    print(f"{'all pages, mean of medians':<40} {statistics.mean(ms for _, ms, _ in rows):>10.3f}")


if __name__ == "__main__":
    main()
