"""The weight of a logged-in ballot page of each ballot type, as served and gzip-compressed.

    .venv/bin/python scripts/ballot_weight.py [--projects 23] [--lang ru]

Runs the gateway in this process over the test suite's in-process fake nodes with one campaign per
ballot type (choose-1, knapsack, cumulative, ordinal), each with ``--projects`` projects in district
north, all but the fixture's few with long titles and 375-character summaries (as
tests/gateway/test_pages.py), logs a citizen in, and prints for each type and key mode (site-held:
no certification key; voter-held: the campaign names one, so the page loads /static/vote.js) the
bytes of the HTML and of every asset the page links, uncompressed — what the 30 KB limit counts —
and gzip-compressed at levels 1 (nginx's default ``gzip_comp_level``) and 6. The gateway itself does
not compress (docs/BENCHMARKS.md "Ballot page weight").
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.certkey import test_certification_key  # noqa: E402
from tests.gateway.harness import (  # noqa: E402
    BALLOT_TYPE_CAMPAIGNS, BALLOT_TYPE_INITIATIVES, Keys, gateway_world, genesis_document, long_initiative,
)

CHOOSE_ONE_FIXED = 3                 # ib-test's own projects in north (tests/gateway/harness.py)
ASSET = re.compile(r'(?:href|src)="(/static/[^"]+)"')


def document(projects: int, certified: bool) -> Callable[[Keys], dict[str, Any]]:
    def build(keys: Keys) -> dict[str, Any]:
        key = test_certification_key().modulus if certified else None
        doc = genesis_document(keys, ballot_types=True, certification_key=key,
                               extra_initiatives=projects - CHOOSE_ONE_FIXED)
        for campaign_id, _, _ in BALLOT_TYPE_CAMPAIGNS:
            doc["initiatives"] += [long_initiative(campaign_id, f"{campaign_id}-x{n:02d}", n)
                                   for n in range(projects - len(BALLOT_TYPE_INITIATIVES))]
        return doc
    return build


async def measure(projects: int, lang: str, certified: bool) -> list[tuple[str, str, list[tuple[str, bytes]]]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="veche-weight-") as tmp:
        async with gateway_world(Path(tmp), document=document(projects, certified), certified=certified) as world:
            citizen = world.client()
            try:
                await citizen.login()
                for campaign_id, kind in [("ib-test", "choose-1")] + [(c, str(b["type"])) for c, _, b in BALLOT_TYPE_CAMPAIGNS]:
                    status, html = await citizen.get(f"/c/{campaign_id}/d/north?lang={lang}")
                    shown = html.count('<div class="item">')
                    if status != 200 or shown != projects:
                        raise SystemExit(f"{campaign_id}: status {status}, {shown} projects")
                    parts = [("HTML", html.encode())]
                    for asset in ASSET.findall(html):
                        status, body = await citizen.get(asset)
                        parts.append((asset.removeprefix("/static/"), body.encode()))
                    rows.append((kind, "voter-held" if certified else "site-held", parts))
            finally:
                await citizen.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--projects", type=int, default=23)
    parser.add_argument("--lang", choices=["ru", "en"], default="ru")
    args = parser.parse_args()
    print(f"{args.projects} projects per ballot, lang={args.lang}; bytes as served / gzip -1 / gzip -6")
    print(f"{'ballot':<11} {'keys':<11} {'total':>7} {'gzip-1':>7} {'gzip-6':>7}  parts")
    for certified in (False, True):
        for kind, mode, parts in asyncio.run(measure(args.projects, args.lang, certified)):
            total = sum(len(body) for _, body in parts)
            packed = [sum(len(gzip.compress(body, level)) for _, body in parts) for level in (1, 6)]
            detail = " + ".join(f"{name} {len(body):,}" for name, body in parts)
            print(f"{kind:<11} {mode:<11} {total:>7,} {packed[0]:>7,} {packed[1]:>7,}  {detail}")


if __name__ == "__main__":
    main()
