"""The node API's OpenAPI description: exact JSON Schemas of every body (``schemas``)."""
