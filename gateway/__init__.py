"""The citizen gateway: the voting web site, SMS and code-card login, voter keys (docs/GATEWAY.md).

It imports ``chain`` and ``genesis`` only and talks to nodes through their public HTTP API.
"""
