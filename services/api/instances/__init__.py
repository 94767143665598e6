"""`/v1/instances` and `/v1/tasks`: running SOPs under JWT role claims."""
