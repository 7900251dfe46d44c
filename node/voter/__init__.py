"""A citizen's device in code: logs in at the gateway, holds its own voter key, votes (``veche ballot``)."""
