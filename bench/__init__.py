"""Benchmarks of the relay: ingest throughput against a bare FastAPI endpoint, and how
close delivery comes to Infusionsoft's rate ceilings. Run ``python -m bench --help``."""
