"""Satkers (courts) as a tree, and each court's working calendar."""
