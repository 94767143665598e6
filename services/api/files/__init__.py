"""Evidence files over HTTP."""
