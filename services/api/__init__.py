"""The HTTP API (FastAPI): app factory, dependencies, one router per feature."""
