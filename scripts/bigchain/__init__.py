"""Ten program-years on one chain: the generator of a 10-million-ballot chain and its measurements.

``scripts/big_chain.py`` is the entry point (``build``, ``plan``, ``measure …``); see its docstring.
"""
