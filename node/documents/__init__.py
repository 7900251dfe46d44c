"""The content-addressed document store of a node (docs/NODE.md §14)."""
