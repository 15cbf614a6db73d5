"""Patchline: an over-the-air update system built on The Update Framework (TUF)."""

__version__ = "0.1.0"
