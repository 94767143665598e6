"""HTTP routes of inbound webhooks: the signed hook endpoint, sources, message log."""
