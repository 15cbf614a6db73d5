"""Delivery rules, the director's decisions, and the tamper-evident audit chain."""
