"""relay.yaml: typed models, compiled selectors, and a loader naming file, path and reason."""
