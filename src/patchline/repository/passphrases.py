"""Where key passphrases come from: the environment, else a prompt, else a clear error."""

from __future__ import annotations

import getpass
import os
import re
import sys
from collections.abc import Callable, Mapping

from patchline.errors import PassphraseError

PromptFn = Callable[[str], str]


def role_variable(role: str) -> str:
    """The environment variable holding one role's passphrase: PATCHLINE_PASSPHRASE_<ROLE>."""
    return "PATCHLINE_PASSPHRASE_" + re.sub(r"[^A-Za-z0-9]", "_", role).upper()


class PassphraseSource:
    """Answers "what is the passphrase for this role's keys?".

    Looks at ``PATCHLINE_PASSPHRASE_<ROLE>``, then ``PATCHLINE_PASSPHRASE``, then asks on
    the terminal when one is attached. A passphrase is asked at most once per role and
    process. Passphrases are never logged or written anywhere.

    They are deliberately not fields of ``patchline.settings.Settings``: that object is
    built for every command and handed everywhere, so a secret in it could reach a repr,
    a log or an error; here one is read only when a key is opened, and only for its role.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        prompt: PromptFn | None = None,
        interactive: bool | None = None,
    ) -> None:
        self._env = os.environ if environ is None else environ
        self._prompt = prompt or getpass.getpass
        self._interactive = sys.stdin.isatty() if interactive is None else interactive
        self._cache: dict[str, str] = {}

    def for_role(self, role: str, *, new: bool = False) -> str:
        """Return the passphrase for ``role``; ``new`` asks twice when prompting."""
        if role in self._cache:
            return self._cache[role]
        value = self._env.get(role_variable(role)) or self._env.get("PATCHLINE_PASSPHRASE")
        if not value:
            value = self._ask(role, new)
        self._cache[role] = value
        return value

    def handler(self, role: str) -> Callable[[str], str]:
        """A securesystemslib SecretsHandler that answers for ``role``."""
        return lambda _secret_name: self.for_role(role)

    def _ask(self, role: str, new: bool) -> str:
        if not self._interactive:
            raise PassphraseError(
                f"no passphrase for the {role} keys",
                hint=f"set {role_variable(role)} or PATCHLINE_PASSPHRASE, or run on a terminal",
            )
        label = "New passphrase" if new else "Passphrase"
        value = self._prompt(f"{label} for the {role} keys: ")
        if new and self._prompt(f"Repeat the passphrase for the {role} keys: ") != value:
            raise PassphraseError("the two passphrases differ")
        if not value:
            raise PassphraseError(f"an empty passphrase for the {role} keys")
        return value
