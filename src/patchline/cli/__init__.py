"""The ``patchline`` command: one module per command group."""
