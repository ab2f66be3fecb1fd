"""The operator surface: the admin JSON API and the HTML dashboard under ``/admin``."""
