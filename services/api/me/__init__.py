"""`/v1/me` and `/v1/overview`: who the caller is, and the work a head oversees."""
