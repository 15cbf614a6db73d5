"""Binary deltas between image builds: build on the server, apply on the device.

``build_delta`` writes a patch and returns its DeltaInfo; ``apply_delta`` streams a patch
over the installed (source) image into a new image in memory that does not grow with the
image size. The patch format is described in ``patchline.delta.format``.
"""

from patchline.delta.apply import apply_delta
from patchline.delta.build import build_delta
from patchline.delta.format import Header
from patchline.delta.info import METHOD, DeltaInfo
from patchline.delta.reader import read_header

__all__ = ["METHOD", "DeltaInfo", "Header", "apply_delta", "build_delta", "read_header"]
