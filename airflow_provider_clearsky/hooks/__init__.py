"""Hooks of the ClearSKY provider."""
