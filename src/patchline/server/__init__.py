"""The HTTP service: device API (``/v1``), management API (``/api``), health and metrics."""
