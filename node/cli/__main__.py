"""``python -m node.cli …`` runs the ``veche`` command line."""

from node.cli import main

main()
