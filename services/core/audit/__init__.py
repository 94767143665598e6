"""The audit trail: hash-chained events per instance, and the outbox fed from them."""
