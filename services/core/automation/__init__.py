"""Automated steps: the jobs a catalog step of kind `automated` names, and their runner."""
