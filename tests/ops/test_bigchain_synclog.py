"""scripts/bigchain/synclog.py reads block sync's catch-up lines as node/sync.py writes them.

The lines are made with node/sync.py's own format strings (read from its source) and the node's log
format (node/process.py), so a change of wording on either side fails here, not silently in a
benchmark that then reports no sync time.
"""

from __future__ import annotations

import ast
import logging
import sys
from datetime import datetime

from node.process import LOG_FORMAT
from tests.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))

from bigchain.synclog import sync_reached, sync_spans  # noqa: E402


def sync_formats() -> dict[str, str]:
    """The INFO format strings of node/sync.py that start and end a catch-up."""
    tree = ast.parse((REPO_ROOT / "node" / "sync.py").read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "info" \
                and call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
            text = call.args[0].value
            if text.startswith("block sync: from"):
                found["from"] = text
            elif text.startswith("block sync: reached"):
                found["reached"] = text
    return found


def line(at: str, message: str, *args: object) -> str:
    record = logging.LogRecord("veche.node.sync", logging.INFO, "sync.py", 1, message, args, None)
    record.created = datetime.strptime(at, "%Y-%m-%d %H:%M:%S.%f").timestamp()
    record.msecs = int(at[-3:])
    record.node = "observer-0"
    return logging.Formatter(LOG_FORMAT).format(record)


def test_catch_ups_are_read_from_the_nodes_own_lines() -> None:
    formats = sync_formats()
    assert set(formats) == {"from", "reached"}, formats
    log = "\n".join([
        line("2026-12-06 11:00:00.100", "node observer-0 listening"),
        line("2026-12-06 11:00:01.250", formats["from"], 0, 46571),
        line("2026-12-06 11:00:30.000", "equal-shares result of campaign ib-2033 published"),
        line("2026-12-06 11:20:01.750", formats["reached"], 46571, 46571, 1200.5),
        line("2026-12-06 11:20:02.000", formats["from"], 46571, 46574),
        line("2026-12-06 11:20:02.500", formats["reached"], 46574, 3, 0.5),
        line("2026-12-06 11:20:09.000", formats["reached"], 46577, 2, 1.0),  # no "from": 2 blocks behind only
        line("2026-12-06 11:20:10.000", formats["from"], 46577, 46590),      # still running
    ])
    spans = sync_spans(log)
    assert [(s.from_height, s.target, s.reached, s.blocks) for s in spans] == [
        (0, 46571, 46571, 46571), (46571, 46574, 46574, 3), (46575, 46577, 46577, 2), (46577, 46590, None, None)]
    first = spans[0]
    assert first.end_time is not None and round(first.end_time - first.start_time, 3) == 1200.5
    assert first.seconds == 1200.5
    assert spans[2].end_time is not None and round(spans[2].end_time - spans[2].start_time, 3) == 1.0
    assert sync_reached(log, 46572) == spans[1]
    assert sync_reached(log, 46580) is None
