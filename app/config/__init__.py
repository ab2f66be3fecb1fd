"""relay.yaml: typed models, compiled selectors, and a loader whose errors name file, path and reason."""
