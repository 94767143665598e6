"""The `alur` command line."""
