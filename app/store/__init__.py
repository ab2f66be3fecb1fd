"""Durable storage of events, their steps and attempts, OAuth tokens and limiter state.

``base`` defines the ``Store`` interface; ``store.SQLStore`` implements it once over a
``database.Database``: ``sqlite_db`` (a writer thread with group commit) or
``postgres_db`` (a connection pool with insert flushers), chosen by
``RELAY_DATABASE_URL`` in ``factory.open_store``. The SQL is in ``queries``, written
once in a ``dialect``; the schema in ``migrations``. The records stored are in
``app.domain``.
"""
