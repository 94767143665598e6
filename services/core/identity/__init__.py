"""Who is calling: bearer JWTs verified into a `Principal` (sub, roles, satker).

HS256 with the configured secret for development; RS256/ES256 with the public keys of a
JWKS file for production. Authorisation (lanes, satker scoping) builds on the principal.
"""
