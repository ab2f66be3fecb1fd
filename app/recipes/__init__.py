"""Ready-made sender recipes: one relay.yaml fragment per cart or member site, shipped
inside the package, listed by ``relay recipes`` and written out by ``relay init``."""
