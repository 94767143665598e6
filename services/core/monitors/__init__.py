"""SOP 05's website monitoring: HTTP probes, certificate and domain expiry, up/down rules."""
