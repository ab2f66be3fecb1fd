"""The SQL of the store, written once for both databases and split by concern.

Every function takes a DB-API connection already inside a transaction and the
``Dialect`` to write its SQL in; rows are accessed by name.
"""
