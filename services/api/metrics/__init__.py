"""`/metrics` for Prometheus: HTTP traffic, database gauges and the workers' figures."""
