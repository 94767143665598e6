"""Notifications: the people an event concerns are told, by e-mail and chat."""
