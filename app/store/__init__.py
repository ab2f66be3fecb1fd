"""Durable storage of events, their steps and attempts, OAuth tokens and limiter state.

``base`` defines the records and the Store interface; ``sqlite`` and ``postgres`` are the
two implementations, chosen by ``RELAY_DATABASE_URL`` in ``open_store``.
"""
