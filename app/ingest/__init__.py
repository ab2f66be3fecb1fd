"""The ingest path: verify a webhook's signature, parse its body, store it as an event."""
