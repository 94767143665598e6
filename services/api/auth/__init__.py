"""`/v1/auth`: sign-in (OAuth2 password grant), refresh, logout, and the JWKS."""
