"""pabulib files and Veche campaigns: what a file becomes on the chain (``plan``) and what a
campaign's ballots become as a file (``export``). Pure; the network side is ``node.pabulib_io``."""
