"""Compressing and expanding operation payloads, with the expansion bounded in size."""

from __future__ import annotations

import lzma

import hdiffpatch

from patchline.delta.format import CODEC_LZMA, CODEC_NONE, MAX_OP_TARGET
from patchline.errors import CorruptDeltaError

# The dictionary never needs to exceed one operation's output, which keeps the applier's
# decoder small no matter how large the image is.
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": MAX_OP_TARGET}]
_DIFF_COMPRESSION = hdiffpatch.Lzma2Config(level=9, window=MAX_OP_TARGET.bit_length() - 1)


def compress(data: bytes) -> tuple[int, bytes]:
    """Return ``(codec, payload)``: LZMA2 if that is smaller than ``data``, else ``data``."""
    packed = lzma.compress(data, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
    if len(packed) < len(data):
        return CODEC_LZMA, packed
    return CODEC_NONE, data


def expand(codec: int, payload: bytes, length: int) -> bytes:
    """Return exactly ``length`` bytes decoded from ``payload``; CorruptDeltaError otherwise."""
    if codec == CODEC_NONE:
        data = payload
    elif codec == CODEC_LZMA:
        decoder = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
        try:
            data = decoder.decompress(payload, max_length=length + 1)
        except lzma.LZMAError as exc:
            raise CorruptDeltaError(f"a REPLACE payload does not decode: {exc}") from None
    else:
        raise CorruptDeltaError(f"unknown payload codec {codec}")
    if len(data) != length:
        raise CorruptDeltaError("a REPLACE payload decodes to the wrong length")
    return data


def diff(old: bytes, new: bytes) -> bytes:
    """Return an HDiffPatch diff (LZMA2-compressed) that turns ``old`` into ``new``."""
    return hdiffpatch.diff(old, new, _DIFF_COMPRESSION, validate=False)


def patch(old: bytes, payload: bytes, length: int) -> bytes:
    """Apply an HDiffPatch ``payload`` to ``old``; exactly ``length`` bytes or CorruptDeltaError."""
    try:
        data = hdiffpatch.apply(old, payload)
    except hdiffpatch.HDiffPatchError as exc:
        raise CorruptDeltaError(f"a DIFF payload does not apply: {exc}") from None
    if len(data) != length:
        raise CorruptDeltaError("a DIFF payload produces the wrong length")
    return data
