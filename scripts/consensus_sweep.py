"""Run the consensus simulator over a range of seeds on every core; resumable; prints each violation.

    nice -n 19 .venv/bin/python scripts/consensus_sweep.py --seeds 5000-9999 --sizes 4-7

Every (n, seed) pair is one scenario: ``Simulation(random_config(seed, n)).run()`` — the generator and
the simulator of ``tests/consensus`` (``--scenarios module:function`` picks another generator with the
same signature), so whatever scenario kinds the generator learns, the sweep runs. One worker process
per core (``--jobs``). Each finished scenario is appended to the state file (``--state``, JSON lines)
at once, so an interrupted sweep started again with the same state file runs only what is missing
(delete the file after changing consensus code). A progress bar goes to stderr; each violation is
printed to stdout with the line that reproduces it, then a summary (scenarios/s). Exit status 0 when
no scenario in the range has a violation (including those finished by an earlier run), 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.consensus.sim import SimConfig, Simulation  # noqa: E402

DEFAULT_SCENARIOS = "tests.consensus.scenarios:random_config"
Generator = Callable[[int, int], SimConfig]


@dataclass(frozen=True, slots=True)
class Outcome:
    n: int
    seed: int
    violations: tuple[str, ...]
    simulated_ms: int
    cpu_s: float

    def to_json(self, scenarios: str) -> str:
        return json.dumps({"scenarios": scenarios, "n": self.n, "seed": self.seed,
                           "violations": list(self.violations), "simulated_ms": self.simulated_ms,
                           "cpu_s": round(self.cpu_s, 4)}, sort_keys=True)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Outcome:
        return cls(int(record["n"]), int(record["seed"]), tuple(str(v) for v in record["violations"]),
                   int(record["simulated_ms"]), float(record["cpu_s"]))


def parse_range(text: str) -> range:
    """``5000-9999`` (both ends included) or a single number."""
    first, _, last = text.partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST or a number, got {text!r}")
    low, high = int(first), int(last or first)
    if high < low:
        raise argparse.ArgumentTypeError(f"empty range {text!r}")
    return range(low, high + 1)


def parse_sizes(text: str) -> list[int]:
    """``4-7`` or ``4,5,7``: validator counts (at least 1)."""
    sizes: list[int] = []
    for part in text.split(","):
        sizes.extend(parse_range(part.strip()))
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"bad sizes {text!r}")
    return sorted(set(sizes))


def load_generator(spec: str) -> Generator:
    module_name, _, name = spec.partition(":")
    generator = getattr(importlib.import_module(module_name), name or "random_config")
    if not callable(generator):
        raise SystemExit(f"{spec} is not callable")
    return generator  # type: ignore[no-any-return]


def reproduction(spec: str, n: int, seed: int) -> str:
    module_name, _, name = spec.partition(":")
    return (f".venv/bin/python -c 'from {module_name} import {name}; from tests.consensus.sim import Simulation; "
            f"print(Simulation({name}({seed}, {n})).run().violations)'")


# --- workers -----------------------------------------------------------------------------------------

_generator: Generator | None = None


def _init_worker(spec: str, niceness: int, pooled: bool = True) -> None:
    global _generator
    if pooled:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the pool
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # and the pool stops a worker with SIGTERM
    if niceness:
        os.nice(niceness)
    _generator = load_generator(spec)


def run_one(pair: tuple[int, int]) -> Outcome:
    """One scenario; an exception escaping the simulator is a violation too."""
    n, seed = pair
    if _generator is None:
        raise RuntimeError("worker not initialised")
    started = time.process_time()
    try:
        result = Simulation(_generator(seed, n)).run()
        violations, simulated = tuple(result.violations), result.finished_ms
    except Exception:
        violations, simulated = (f"exception: {traceback.format_exc(limit=8)}",), 0
    return Outcome(n, seed, violations, simulated, time.process_time() - started)


# --- state file and progress -------------------------------------------------------------------------

def load_state(path: Path, spec: str) -> dict[tuple[int, int], Outcome]:
    """Finished scenarios of this generator; a torn last line (killed while writing) is ignored."""
    done: dict[tuple[int, int], Outcome] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            if record.get("scenarios") == spec:
                outcome = Outcome.from_record(record)
                done[(outcome.n, outcome.seed)] = outcome
        except (ValueError, KeyError, TypeError):
            continue
    return done


class Progress:
    """A one-line bar on a terminal (redrawn at most 4 times a second), else a line every 30 s."""

    def __init__(self, total: int, already: int, stream: TextIO) -> None:
        self.total, self.done, self.stream = total, already, stream
        self.started = time.monotonic()
        self.already = already
        self.violations = 0
        self.tty = stream.isatty()
        self._last = 0.0

    def advance(self, outcome: Outcome) -> None:
        self.done += 1
        self.violations += bool(outcome.violations)
        now = time.monotonic()
        if now - self._last >= (0.25 if self.tty else 30.0) or self.done == self.total:
            self._last = now
            self.draw(now)

    def draw(self, now: float) -> None:
        fresh = self.done - self.already
        elapsed = max(now - self.started, 1e-9)
        rate = fresh / elapsed
        remaining = (self.total - self.done) / rate if rate > 0 else 0.0
        filled = int(30 * self.done / self.total) if self.total else 30
        line = (f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} "
                f"{100 * self.done / max(self.total, 1):5.1f}%  {rate:6.1f} scenarios/s  "
                f"ETA {remaining / 60:5.1f} min  violations {self.violations}")
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def report_violation(outcome: Outcome, spec: str, out: TextIO) -> None:
    out.write(f"VIOLATION n={outcome.n} seed={outcome.seed}:\n")
    for violation in outcome.violations:
        out.write(f"  {violation}\n")
    out.write(f"  reproduce: {reproduction(spec, outcome.n, outcome.seed)}\n")
    out.write(f"  pin it: add ({outcome.n}, {outcome.seed}) to REGRESSION_SEEDS in tests/consensus/test_simulation.py\n")
    out.flush()


# --- main --------------------------------------------------------------------------------------------

def sweep(pairs: list[tuple[int, int]], spec: str, state: Path, jobs: int, niceness: int,
          out: TextIO, err: TextIO) -> dict[str, Any]:
    """Run every pair not yet in ``state``; returns the summary (also printed)."""
    done = load_state(state, spec)
    todo = [pair for pair in pairs if pair not in done]
    resumed = [done[pair] for pair in pairs if pair in done]
    for outcome in resumed:
        if outcome.violations:
            report_violation(outcome, spec, out)
    progress = Progress(len(pairs), len(resumed), err)
    fresh: list[Outcome] = []
    started = time.monotonic()
    state.parent.mkdir(parents=True, exist_ok=True)
    with state.open("a") as log:
        for outcome in _outcomes(todo, spec, jobs, niceness):
            log.write(outcome.to_json(spec) + "\n")
            log.flush()
            fresh.append(outcome)
            if outcome.violations:
                if progress.tty:
                    err.write("\n")
                report_violation(outcome, spec, out)
            progress.advance(outcome)
    progress.close()
    wall = time.monotonic() - started
    every = resumed + fresh
    cpu = sum(o.cpu_s for o in fresh)
    summary = {
        "scenarios": len(every), "this_run": len(fresh), "resumed": len(resumed),
        "violations": sum(1 for o in every if o.violations), "wall_s": round(wall, 1),
        "scenarios_per_s": round(len(fresh) / wall, 2) if wall > 0 else 0.0,
        "cpu_s": round(cpu, 1), "scenarios_per_cpu_s": round(len(fresh) / cpu, 2) if cpu > 0 else 0.0,
        "simulated_s": round(sum(o.simulated_ms for o in every) / 1000), "jobs": jobs,
    }
    return summary


def _outcomes(todo: list[tuple[int, int]], spec: str, jobs: int, niceness: int) -> Iterator[Outcome]:
    if not todo:
        return
    if jobs == 1:
        _init_worker(spec, niceness, pooled=False)
        yield from (run_one(pair) for pair in todo)
        return
    with multiprocessing.get_context("fork").Pool(jobs, _init_worker, (spec, niceness)) as pool:
        yield from pool.imap_unordered(run_one, todo, chunksize=4)


def interleave(seeds: Iterable[int], sizes: list[int]) -> list[tuple[int, int]]:
    """(n, seed) pairs seed by seed, so a partial run covers every size evenly."""
    return [(n, seed) for seed in seeds for n in sizes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=parse_range, required=True, help="FIRST-LAST, both included")
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("4-7"), help="validator counts: 4-7 or 4,6")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: one a core)")
    parser.add_argument("--state", type=Path, help="state file of finished scenarios "
                        "(default: consensus-sweep-FIRST-LAST-SIZES.jsonl in the current directory)")
    parser.add_argument("--scenarios", default=DEFAULT_SCENARIOS, help="generator module:function(seed, n)")
    parser.add_argument("--nice", type=int, default=0, help="raise the workers' niceness by this much")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    seeds: range = args.seeds
    sizes: list[int] = args.sizes
    spec: str = args.scenarios if ":" in args.scenarios else args.scenarios + ":random_config"
    load_generator(spec)  # fail early on a bad --scenarios
    state: Path = args.state or Path(
        f"consensus-sweep-{seeds.start}-{seeds.stop - 1}-{'-'.join(map(str, sizes))}.jsonl")
    pairs = interleave(seeds, sizes)
    print(f"consensus sweep: seeds {seeds.start}-{seeds.stop - 1} × n {','.join(map(str, sizes))} "
          f"= {len(pairs)} scenarios ({spec}), {args.jobs} processes, state {state}", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        summary = sweep(pairs, spec, state, args.jobs, args.nice, sys.stdout, sys.stderr)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished scenarios are in {state}; run again to resume", file=sys.stderr)
        return 130
    print(f"scenarios {summary['scenarios']} (this run {summary['this_run']}, resumed {summary['resumed']}), "
          f"violations {summary['violations']}")
    print(f"this run: {summary['wall_s']} s wall, {summary['scenarios_per_s']} scenarios/s on {summary['jobs']} "
          f"processes; {summary['cpu_s']} s CPU ({summary['scenarios_per_cpu_s']} scenarios per CPU second); "
          f"{summary['simulated_s']} s simulated in all")
    return 1 if summary["violations"] else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM: stop the workers and say how to resume, like Ctrl-C


if __name__ == "__main__":
    sys.exit(main())
