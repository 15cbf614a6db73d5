"""Process-wide settings, read once from the environment and passed down explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from patchline.errors import ConfigError

#: scrypt cost (log2 of N) for new key files: 2**17 with r=8 is OWASP's recommendation.
DEFAULT_KDF_LOG2N = 17


@dataclass(frozen=True)
class Settings:
    """What Patchline reads from its environment.

    ``PATCHLINE_KEY_KDF_LOG2N``: scrypt cost for newly written key files (10-22).
    Passphrases are read where they are needed (see ``repository.keys``), never kept here.
    """

    kdf_log2n: int = DEFAULT_KDF_LOG2N

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (the process environment by default)."""
        env = os.environ if environ is None else environ
        raw_cost = env.get("PATCHLINE_KEY_KDF_LOG2N", str(DEFAULT_KDF_LOG2N))
        try:
            cost = int(raw_cost)
        except ValueError:
            raise ConfigError(f"PATCHLINE_KEY_KDF_LOG2N={raw_cost!r} is not a number") from None
        if not 10 <= cost <= 22:
            raise ConfigError("PATCHLINE_KEY_KDF_LOG2N must be between 10 and 22")
        return cls(kdf_log2n=cost)
