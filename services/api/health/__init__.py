"""`/healthz` and `/readyz` for probes and monitoring tools."""
