"""Implementations of the ports: ``memory`` (reference) and ``system`` (clock, ids)."""
