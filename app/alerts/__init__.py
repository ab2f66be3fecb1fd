"""Alerts: tell the operator's chat channel (RELAY_ALERT_URL) before the customer does.

``grouping`` decides which dead events make one message (pure), ``messages`` writes
them, ``sender`` POSTs them with retries, ``alerter`` runs it all beside the worker.
"""
