"""Operating the node on a real machine: its own faults (disk, store, signing state) and their
remedies; TLS trust for outgoing https (``tls.py``, ``ca_file``) and the health route (``health.py``)
(docs/OPERATOR.md, docs/NODE.md §7, §9–12)."""
