"""Development and test support shared by ``tests/`` and ``bench/``: PostgreSQL schemas and
throwaway clusters, the fault scenario's cart, and the no-skips gate.

Like ``fake_keap``, it is a tool of a source checkout: not part of the relay, not in the
wheel or the Docker image, and never imported by ``app``.
"""
