"""Alur's own sign-in: passwords and TOTP, lockout, signing keys, access and refresh
tokens."""
