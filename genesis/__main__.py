"""`python -m genesis check FILE`: validate a genesis file and print its hash."""

from genesis.cli import genesis_group

if __name__ == "__main__":
    genesis_group(prog_name="python -m genesis")
