"""Devices and enrollment, install reports and reconciliation, fleet queries."""
