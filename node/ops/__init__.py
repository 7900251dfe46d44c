"""Operating the node on a real machine: its own faults (disk, store, signing state) and their remedies."""
