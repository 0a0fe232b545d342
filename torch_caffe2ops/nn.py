"""Modules (filled in per family)."""
