"""``GET /metrics`` of a real in-process node: prometheus-client's parser reads it, every metric
docs/NODE.md §8 names is there under that name, and the values are the node's counters.

The in-process host serves without the listening socket's connection guard, so the test puts one on
the node's metrics as ``veche node start`` does (node/process.py); the deployment test scrapes a
real process through nginx."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from node.metrics import CONTENT_TYPE, NodeMetrics
from node.net.guard import ConnectionGuard
from node.node import Node
from node.process import guard_limits
from tests.node.apphost import Client, make_testnet, serve_node, until
from tests.node.votes import demo_plan, encode_batch, make_batch
from tests.paths import REPO_ROOT as ROOT

OCTET = {"Content-Type": "application/octet-stream"}


def documented_metrics() -> set[str]:
    """Metric names in the table of docs/NODE.md §8 (first column)."""
    text = (ROOT / "docs" / "NODE.md").read_text(encoding="utf-8")
    section = text.split("## 8. Metrics", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `veche_"):
            first = line.split("|")[1]
            names.update(re.findall(r"`(veche_[a-z0-9_]+)", first))
    return names


def test_node_metrics_parse_with_prometheus_client(tmp_path: Path) -> None:
    home = make_testnet(tmp_path / "net").nodes[0].home

    async def main() -> None:
        async with serve_node(home) as (node, client):
            ConnectionGuard(guard_limits(node.limits), node.metrics, fd_limit=4096)
            await until(lambda: node.ledger.height >= 1, what="the first block")
            plan = demo_plan(home.parent)
            response = await client.post("/api/v1/txs", data=encode_batch(make_batch(plan, 3)), headers=OCTET)
            assert response.status == 200, await response.text()
            accepted = len((await response.json())["accepted"])
            assert accepted > 0
            await until(lambda: node.metrics.txs_committed.value() >= accepted, what="the batch to commit")
            await check_scrape(node, client, accepted)

    asyncio.run(main())


async def check_scrape(node: Node, client: Client, accepted: int) -> None:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE
    text = await response.text()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    # the parser names a counter family without its _total suffix; the samples keep it
    exposed = {sample.name for family in families.values() for sample in family.samples}
    exposed |= {family.name + ("_total" if family.type == "counter" else "") for family in families.values()}
    missing = sorted(documented_metrics() - exposed)
    assert not missing, f"documented in docs/NODE.md §8 but not exposed: {missing}"
    assert families["veche_height"].type == "gauge"
    assert 1 <= families["veche_height"].samples[0].value <= node.ledger.height
    assert families["veche_txs_accepted"].type == "counter"
    client_accepted = [s for s in families["veche_txs_accepted"].samples
                       if s.name == "veche_txs_accepted_total" and s.labels == {"source": "client"}]
    assert client_accepted and client_accepted[0].value == accepted
    committed = families["veche_txs_committed"].samples[0]
    assert committed.name == "veche_txs_committed_total" and committed.value >= accepted
    histogram = families["veche_block_write_seconds"]
    assert histogram.type == "histogram"
    buckets = [s for s in histogram.samples if s.name == "veche_block_write_seconds_bucket"]
    counts = [s.value for s in buckets]
    assert buckets[-1].labels["le"] == "+Inf" and counts == sorted(counts) and counts[-1] >= 1
    assert not any(name.endswith("_created") for name in exposed)


def test_wrapper_reads_back_what_it_counted() -> None:
    metrics = NodeMetrics()
    metrics.p2p_rejected.inc("validator-1", "bad_signature")
    metrics.p2p_rejected.inc("validator-1", "bad_signature", amount=2)
    metrics.p2p_rejected.inc("validator-2", "replay")
    metrics.txs_committed.inc(amount=5)
    assert metrics.p2p_rejected.value("validator-1", "bad_signature") == 3
    assert metrics.p2p_rejected.value("validator-3", "bad_signature") == 0
    assert metrics.p2p_rejected.values == {("validator-1", "bad_signature"): 3, ("validator-2", "replay"): 1}
    assert metrics.txs_committed.value() == 5
    text = metrics.render()
    assert 'veche_p2p_rejected_total{peer="validator-1",reason="bad_signature"} 3.0' in text
    label_value = 'a "quoted"\\back\nslash'
    metrics.txs_rejected.inc(label_value)
    parsed = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in text_string_to_metric_families(metrics.render()) for s in family.samples}
    assert parsed[("veche_txs_rejected_total", (("code", label_value),))] == 1
