"""Fuzz tests run a bounded number of examples. Under CI (CI=true) hypothesis runs with the
"ci" profile registered in tests/conftest.py: derandomized, so a red build reproduces
exactly and a green one is not a matter of luck."""
