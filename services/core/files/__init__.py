"""Evidence files: immutable, content-addressed, attached to an instance and covered by
its audit chain."""
