"""Inbound webhooks: signed notices from SATGAS SIPP and the high court that start or move SOPs."""
