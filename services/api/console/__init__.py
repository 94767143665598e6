"""The staff console: static files served at `/console/`, a client of `/v1` only."""
