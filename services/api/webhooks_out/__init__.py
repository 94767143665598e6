"""`/v1/webhook-subscriptions`, `/v1/webhook-deliveries`, `/v1/webhook-event-types`."""
