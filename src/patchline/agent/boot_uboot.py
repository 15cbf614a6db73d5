"""U-Boot's environment through ``fw_printenv``/``fw_setenv`` (libubootenv).

The agent keeps ``patchline_slot`` (the slot U-Boot boots), ``patchline_good`` (the
slot known good) and ``patchline_trial``, and uses U-Boot's own boot counting: arming
a trial sets ``upgrade_available=1``, ``bootcount=0`` and ``bootlimit``; U-Boot raises
``bootcount`` at every boot while ``upgrade_available`` is 1 and runs ``altbootcmd``
once it exceeds ``bootlimit``; the maker's ``altbootcmd`` sets ``patchline_slot`` back
to ``patchline_good`` and boots it (see docs/agent-boot.md).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from patchline.agent.bootloader import BootTrial
from patchline.errors import InstallFailedError
from patchline.wire.device_api import Slot


class UBootEnv:
    """The A/B switch through U-Boot's environment; ``config`` is fw_env.config."""

    name = "u-boot"

    def __init__(self, config: Path = Path("/etc/fw_env.config")) -> None:
        self.config = config

    def variables(self) -> dict[str, str]:
        """Every variable of the environment."""
        out = self._run("fw_printenv", "-c", str(self.config))
        found = {}
        for line in out.splitlines():
            name, sep, value = line.partition("=")
            if sep:
                found[name] = value
        return found

    def _set(self, **values: str) -> None:
        """Set every variable in one write of the environment (an empty value deletes)."""
        script = "".join(f"{name}={value}\n" for name, value in values.items())
        self._run("fw_setenv", "-c", str(self.config), "-s", "-", stdin=script)

    def _run(self, *args: str, stdin: str | None = None) -> str:
        try:
            done = subprocess.run(
                list(args),
                input=stdin.encode() if stdin is not None else None,
                capture_output=True,
                check=False,
                timeout=60,
            )
        except OSError as exc:
            raise InstallFailedError(
                f"cannot run {args[0]}: {exc.strerror}", hint="install Debian's libubootenv-tool"
            ) from None
        if done.returncode != 0:
            raise InstallFailedError(
                f"{args[0]} failed: {done.stderr.decode(errors='replace').strip()[-300:]}"
            )
        return done.stdout.decode(errors="replace")

    def install_boot_files(self, slot: Slot, image: Path) -> None:
        """Nothing: U-Boot reads the kernel from the slot's own file system."""

    def forget(self, slot: Slot) -> None:
        """Drop a trial of ``slot``; make sure it is not the slot U-Boot boots."""
        env = self.variables()
        changes: dict[str, str] = {}
        if env.get("patchline_trial") == slot.value:
            changes.update(patchline_trial="", upgrade_available="0", bootcount="0")
        if env.get("patchline_slot") == slot.value and env.get("patchline_good") not in (
            None,
            "",
            slot.value,
        ):
            changes["patchline_slot"] = env["patchline_good"]
        if changes:
            self._set(**changes)

    def arm_trial(self, slot: Slot, tries: int) -> None:
        """Boot ``slot`` next; U-Boot falls back after ``tries`` boots without a mark."""
        env = self.variables()
        good = env.get("patchline_good") or env.get("patchline_slot") or ""
        self._set(
            patchline_good=good,
            patchline_trial=slot.value,
            patchline_slot=slot.value,
            bootlimit=str(max(tries, 1)),
            bootcount="0",
            upgrade_available="1",
        )

    def trial(self) -> BootTrial | None:
        """The trial slot, with ``bootlimit - bootcount`` tries left."""
        env = self.variables()
        slot = env.get("patchline_trial", "")
        if slot not in ("a", "b"):
            return None
        limit = _number(env.get("bootlimit", "1"))
        count = _number(env.get("bootcount", "0"))
        return BootTrial(Slot(slot), max(limit - count, 0), min(count, limit))

    def mark_good(self, slot: Slot) -> None:
        """``slot`` is good: boot it, no counting."""
        self._set(
            patchline_good=slot.value,
            patchline_slot=slot.value,
            patchline_trial="",
            upgrade_available="0",
            bootcount="0",
        )

    def mark_bad(self, slot: Slot) -> None:
        """Go back to the good slot at the next boot."""
        env = self.variables()
        good = env.get("patchline_good", "")
        if env.get("patchline_trial") == slot.value and good:
            self._set(patchline_slot=good, bootcount=env.get("bootlimit", "1"))

    def last_good(self) -> Slot | None:
        """``patchline_good``."""
        good = self.variables().get("patchline_good", "")
        return Slot(good) if good in ("a", "b") else None


def _number(text: str) -> int:
    return int(text) if text.isdigit() else 0
