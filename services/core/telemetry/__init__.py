"""What the API's `/metrics` and `/readyz` read: database gauges and the workers' own
figures, which the workers keep in Redis so that any API replica can show them."""
