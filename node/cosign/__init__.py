"""Signing requests of the committee: the format (request.py), the nodes' pending-request store
(store.py) and its routes (api.py). docs/OPERATOR.md "Signing requests", docs/NODE.md §15."""
