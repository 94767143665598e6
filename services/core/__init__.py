"""Code shared by the API and the worker: settings, database, the engine and features."""
