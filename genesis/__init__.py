"""Veche genesis package: genesis validation and hash (model), campaign/initiative JSON, home config
loaders (config), `veche testnet init` (testnet), Volgograd demo data (demo) and CLI commands (cli).
See docs/GENESIS.md."""
