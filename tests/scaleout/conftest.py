"""The scale-out tests reuse the delivery tests' fake Infusionsoft and relay config."""

from tests.delivery.conftest import delivery_config, fake_keap

__all__ = ["delivery_config", "fake_keap"]
