"""HTTP edges of the relay: problem+json errors, health checks."""
