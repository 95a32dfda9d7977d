"""Sensors: wait for an order's status or for imagery."""
