"""Outbound webhooks: subscriptions, the outbox relay, signed deliveries with retries."""
