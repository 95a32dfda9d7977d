"""Triggers: the deferrable sensors' waits, in the triggerer."""
