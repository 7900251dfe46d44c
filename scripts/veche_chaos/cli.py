"""``scripts/chaos``: command line of the fault and load proving ground.

  scripts/chaos                               the short run: kill -9, SIGSTOP, partition, wipe, restart
  scripts/chaos --plan full --minutes 25      every fault on every node in turn, repeated for 25 min
  scripts/chaos --plan kill9:validator-1,split:validator-0
  scripts/chaos --byzantine validator-3       one equivocating validator (node/byzantine.py)
  scripts/chaos --flood                       measure a node's admission rate, flood it with 10x
  scripts/chaos --flood --flood-attacks all   ... with hostile clients beside it (trickle, slow uploads, envelopes, ...)
  scripts/chaos --soak --hours 2              steady load; memory and latency over time
  scripts/chaos --heal-probe validator-2      how soon every node takes votes again after a partition heals
  scripts/chaos --lifecycle                   replace a validator, rotate the gateway key, a scheduled upgrade
                                              with one node left on the old version (lifecycle.py)

Exit status 0 only when every invariant and gate holds (see docs/RELIABILITY.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from types import FrameType
from pathlib import Path

from veche_chaos.flood import FloodConfig, flood_phase
from veche_chaos.hostile import KINDS as HOSTILE_KINDS
from veche_chaos.perturb import KINDS
from veche_chaos.runner import ChaosRun, Context, Phase, RunConfig, run_plan
from veche_chaos.scenarios import DEFAULT_BYZANTINE_BEHAVIOURS, byzantine_phase, heal_probe_phase
from veche_chaos.soak import soak


def parse_plan(text: str) -> list[tuple[str, str]] | str:
    if text in ("short", "full", "none"):
        return [] if text == "none" else text
    plan = []
    for item in text.split(","):
        kind, _, target = item.partition(":")
        if kind not in KINDS or not target:
            raise argparse.ArgumentTypeError(f"plan item {item!r}: want KIND:NODE with KIND one of {', '.join(KINDS)}")
        plan.append((kind, target))
    return plan


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/chaos", description="Veche fault and load proving ground.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--dir", type=Path, help="run folder (default: a new temporary folder, removed on success)")
    parser.add_argument("--keep", action="store_true", help="keep the run folder even on success")
    parser.add_argument("--fabric", choices=("auto", "netns", "proxy"), default="auto",
                        help="partition mechanism: network namespaces or the fault-injecting TCP proxy")
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--observers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=40.0, help="direct votes per second (default 40)")
    parser.add_argument("--gateway-rate", type=float, default=1.5, help="citizen flows per second (default 1.5)")
    parser.add_argument("--gateway-concurrency", type=int, default=4)
    parser.add_argument("--plan", type=parse_plan, default="short",
                        help="short | full | none | KIND:NODE,KIND:NODE,... (kinds: " + ", ".join(KINDS) + ")")
    parser.add_argument("--minutes", type=float, default=0.0, help="repeat the plan until this many minutes passed")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds a SIGSTOP or a partition lasts")
    parser.add_argument("--down", type=float, default=3.0, help="seconds a killed node stays down")
    parser.add_argument("--settle", type=float, default=4.0, help="calm seconds after each recovery")
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--drain", type=float, default=60.0, help="seconds acknowledged votes get to commit at the end")
    parser.add_argument("--byzantine", metavar="NODE", help="run NODE with VECHE_BYZANTINE behaviours")
    parser.add_argument("--behaviours", default=DEFAULT_BYZANTINE_BEHAVIOURS,
                        help=f"with --byzantine (default {DEFAULT_BYZANTINE_BEHAVIOURS})")
    parser.add_argument("--heal-probe", metavar="NODE",
                        help="cut NODE off for --hold s, heal, and time votes posted to every node right after")
    parser.add_argument("--flood", action="store_true", help="flood one node with 10x its admission rate")
    parser.add_argument("--flood-target", default="validator-1")
    parser.add_argument("--flood-factor", type=float, default=10.0)
    parser.add_argument("--flood-seconds", type=float, default=30.0)
    parser.add_argument("--flood-sources", type=int, choices=range(1, 5), default=1,
                        help="client addresses the flood comes from (1-4; each gets its own node budget)")
    parser.add_argument("--flood-networks", action="store_true",
                        help="each flood address in a /24 of its own (127.77.0.1, ...; the loopback fabric only), "
                             "so each is a network of its own for the node-wide fair share")
    parser.add_argument("--flood-batch", type=int, default=500,
                        help="transactions per flood request (small batches take every token a bucket refills)")
    parser.add_argument("--flood-light-rate", type=float, default=0.0,
                        help="votes/s of a light untrusted client posting to the flood target only "
                             "(from the runner's own address; reported as light_untrusted_client)")
    parser.add_argument("--flood-attacks", default="",
                        help="hostile clients beside the flood, comma-separated: trickle, slow_upload, envelope, "
                             "garbage, unicode, or all (docs/RELIABILITY.md, 'Hostile clients')")
    parser.add_argument("--flood-forged-pool", type=int, default=60_000,
                        help="distinct forged votes the flood cycles through (the node remembers bad signatures)")
    parser.add_argument("--lifecycle", action="store_true",
                        help="under load: replace validator-3 by a fresh machine (validators.update), rotate the "
                             "gateway key, schedule an upgrade validator-2's software does not support")
    parser.add_argument("--replace-validator", metavar="NODE", help="only the replacement phase, of NODE")
    parser.add_argument("--rotate-gateway", action="store_true", help="only the gateway key rotation phase")
    parser.add_argument("--upgrade-laggard", metavar="NODE", help="only the upgrade phase, NODE left on the old version")
    parser.add_argument("--soak", action="store_true", help="steady load for --hours; memory and latency over time")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--fault-every", type=float, default=0.0, help="soak: one perturbation every N seconds")
    parser.add_argument("--sample-interval", type=float, default=10.0, help="seconds between soak samples")
    parser.add_argument("--client-tx-rate", type=int, help="node limits.client_tx_rate for the run")
    parser.add_argument("--client-tx-burst", type=int, help="node limits.client_tx_burst for the run (>= 5000)")
    parser.add_argument("--node-tx-rate", type=int,
                        help="node limits.node_tx_rate for the run (all untrusted clients together; default: measured)")
    parser.add_argument("--tx-check-limit", type=int, help="check at most N acknowledged votes via GET /txs/{hash}")
    parser.add_argument("--json", type=Path, help="write the summary as JSON here")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def config_from(args: argparse.Namespace) -> tuple[RunConfig, list[Phase] | None]:
    config = RunConfig(directory=args.dir, fabric=args.fabric, validators=args.validators, observers=args.observers,
                       direct_rate=args.rate, gateway_rate=args.gateway_rate,
                       gateway_concurrency=args.gateway_concurrency, plan=args.plan, repeat_for_s=args.minutes * 60,
                       hold_s=args.hold, down_s=args.down, settle_s=args.settle, warmup_s=args.warmup,
                       drain_s=args.drain, keep=args.keep, json_out=args.json, tx_check_limit=args.tx_check_limit,
                       sample_interval_s=args.sample_interval)
    if args.client_tx_rate:
        config.node_limits["client_tx_rate"] = args.client_tx_rate
    if args.client_tx_burst:
        config.node_limits["client_tx_burst"] = args.client_tx_burst
    if args.node_tx_rate:
        config.node_limits["node_tx_rate"] = args.node_tx_rate
    phases: list[Phase] | None = None
    if args.byzantine:
        config.byzantine = {args.byzantine: args.behaviours}
        config.title = f"Veche Byzantine run ({args.byzantine}: {args.behaviours})"
        phases = [byzantine_phase]
        if args.plan not in ([], "short"):
            phases.append(run_plan)
    if args.heal_probe:
        target, hold = args.heal_probe, args.hold

        async def probe(context: Context) -> None:
            await heal_probe_phase(context, target, hold)

        config.title = f"Veche post-heal probe ({target})"
        phases = (phases or []) + [probe]
    if args.flood:
        config.title = "Veche flood run"
        config.measured_node = args.flood_target
        flood = FloodConfig(target=args.flood_target, factor=args.flood_factor, seconds=args.flood_seconds,
                            sources=args.flood_sources, forged_pool=args.flood_forged_pool,
                            networks=args.flood_networks, light_rate=args.flood_light_rate,
                            flood_batch=args.flood_batch, attacks=attack_kinds(args.flood_attacks))
        phases = (phases or []) + [flood_phase(flood)]
    if args.lifecycle or args.replace_validator or args.rotate_gateway or args.upgrade_laggard:
        from veche_chaos import lifecycle

        chosen: list[Phase] = []
        if args.lifecycle:
            config.spares = 1
            chosen.append(lifecycle.lifecycle_phase)
        if args.replace_validator:
            config.spares = 1
            target = args.replace_validator

            async def replace(context: Context) -> None:
                await lifecycle.replace_phase(context, target)
            chosen.append(replace)
        if args.rotate_gateway:
            chosen.append(lifecycle.gateway_phase)
        if args.upgrade_laggard:
            laggard = args.upgrade_laggard

            async def upgrade(context: Context) -> None:
                await lifecycle.upgrade_phase(context, laggard)
            chosen.append(upgrade)
        config.title = "Veche lifecycle run"
        phases = (phases or []) + chosen
    if args.soak:
        config.soak_s = args.hours * 3600
        config.fault_every_s = args.fault_every
        config.title = f"Veche soak run ({args.hours:g} h)"
        if phases is None:
            phases = [] if args.plan == "short" else [run_plan]
        phases.append(soak)
    return config, phases


def attack_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for kind in text.split(",") if kind.strip())
    if kinds == ("all",):
        return HOSTILE_KINDS
    unknown = sorted(set(kinds) - set(HOSTILE_KINDS))
    if unknown:
        raise SystemExit(f"--flood-attacks: unknown kinds {', '.join(unknown)} (known: {', '.join(HOSTILE_KINDS)}, all)")
    return kinds


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM tears down like Ctrl-C: processes, namespaces, proxy
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    config, phases = config_from(args)
    try:
        summary = asyncio.run(ChaosRun(config, phases).execute())
    except KeyboardInterrupt:
        logging.getLogger("veche.chaos").error("interrupted: everything started was stopped and removed")
        return 130
    return 0 if summary.ok else 1
