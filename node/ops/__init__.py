"""What an operator's machine needs around the node: TLS trust for outgoing https, logging to the
journal or a file (once), and the health route (docs/OPERATOR.md, docs/NODE.md §9–11)."""
