"""The gateway's operator side: Prometheus metrics, the health monitor behind ``/healthz``, and the
loopback admin route behind ``veche gateway unlock`` (docs/GATEWAY.md, docs/OPERATOR.md)."""
