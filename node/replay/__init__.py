"""Where ``veche verify`` keeps its replay: an on-disk store, kept as a checkpoint when asked."""
