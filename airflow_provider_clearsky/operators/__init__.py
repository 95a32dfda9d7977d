"""Operators: order, cancel, find tiles and download imagery."""
