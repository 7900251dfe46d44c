"""``python -m node --home DIR``: run one node (what ``veche node start`` and ``veche testnet start`` run)."""

from __future__ import annotations

import argparse
import sys

from node.process import run_node


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m node", description="Run a Veche validator or observer.")
    parser.add_argument("--home", required=True, help="the node's home folder (config.json, genesis.json, ...)")
    parser.add_argument("--recover-signing-state", action="store_true",
                        help="the signing state is lost: derive a safe signing floor from the chain (docs/NODE.md §6)")
    arguments = parser.parse_args()
    return run_node(arguments.home, recover_signing_state=arguments.recover_signing_state)


if __name__ == "__main__":
    sys.exit(main())
