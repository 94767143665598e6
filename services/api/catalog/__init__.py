"""`/v1/sops`: the SOP catalog, its versions and diagrams."""
