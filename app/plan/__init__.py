"""Routing and planning: which routes an event matches and the Infusionsoft steps it needs."""
