"""Typed wrappers."""
