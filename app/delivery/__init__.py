"""Delivery: the worker that claims stored events and runs their steps at Infusionsoft."""
