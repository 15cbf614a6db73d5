"""GRUB with a try counter in its environment block (``grubenv`` on the ESP).

Variables the agent keeps, and the maker's grub.cfg reads (see docs/agent-boot.md):
``patchline_good`` (the slot known good), ``patchline_trial`` (the slot being tried,
empty when none) and ``patchline_tries`` (tries it has left). Before booting a trial
grub.cfg lowers ``patchline_tries`` by one and saves it with ``save_env``; at 0 it boots
``patchline_good``. ``patchline_tries_done`` counts the tries used.
"""

from __future__ import annotations

from pathlib import Path

from patchline.agent.bootloader import BootTrial
from patchline.agent.esp import Esp
from patchline.agent.grubenv import format_grubenv, parse_grubenv
from patchline.wire.device_api import Slot

MAX_TRIES = 9  # grub.cfg counts down with string comparisons, one digit


class GrubEnv:
    """The A/B switch through GRUB's environment block at ``path`` on the ESP."""

    name = "grub"

    def __init__(self, esp: Esp, path: str = "/EFI/patchline/grubenv") -> None:
        self.esp = esp
        self.path = path

    def variables(self) -> dict[str, str]:
        """The environment block's variables (empty when it does not exist yet)."""
        try:
            return parse_grubenv(self.esp.read(self.path))
        except FileNotFoundError:
            return {}

    def _save(self, variables: dict[str, str]) -> None:
        self.esp.write(self.path, format_grubenv(variables))

    def install_boot_files(self, slot: Slot, image: Path) -> None:
        """Nothing: GRUB reads the kernel from the slot's own file system."""

    def forget(self, slot: Slot) -> None:
        """Drop a trial of ``slot``; if it was the good slot, no slot is good any more."""
        env = self.variables()
        if env.get("patchline_trial") == slot.value:
            env.update(patchline_trial="", patchline_tries="0")
        if env.get("patchline_good") == slot.value:
            env["patchline_good"] = ""
        self._save(env)

    def arm_trial(self, slot: Slot, tries: int) -> None:
        """Set ``slot`` as the trial with ``tries`` (1 to 9) tries."""
        env = self.variables()
        env.update(
            patchline_trial=slot.value,
            patchline_tries=str(min(max(tries, 1), MAX_TRIES)),
            patchline_tries_done="0",
        )
        self._save(env)

    def trial(self) -> BootTrial | None:
        """The trial slot and its tries left, if one is set."""
        env = self.variables()
        slot = env.get("patchline_trial", "")
        if slot not in ("a", "b"):
            return None
        return BootTrial(
            Slot(slot),
            _number(env.get("patchline_tries", "0")),
            _number(env.get("patchline_tries_done", "0")),
        )

    def mark_good(self, slot: Slot) -> None:
        """``slot`` is the good slot; no trial."""
        env = self.variables()
        env.update(patchline_good=slot.value, patchline_trial="", patchline_tries="0")
        self._save(env)

    def mark_bad(self, slot: Slot) -> None:
        """No tries left for the trial of ``slot``."""
        env = self.variables()
        if env.get("patchline_trial") == slot.value:
            env["patchline_tries"] = "0"
            self._save(env)

    def last_good(self) -> Slot | None:
        """``patchline_good``."""
        good = self.variables().get("patchline_good", "")
        return Slot(good) if good in ("a", "b") else None


def _number(text: str) -> int:
    return int(text) if text.isdigit() else 0


def grub_script(
    partitions: dict[Slot, str], kernel_options: str, env: str = "${prefix}/grubenv"
) -> str:
    """A grub.cfg that boots the A/B slots with the agent's try counter.

    ``partitions`` names each slot's GRUB partition, e.g. ``{Slot.A: "hd0,gpt2"}``; the
    kernel and initrd are read from /boot/vmlinuz and /boot/initrd.img of the slot's own
    file system; the kernel command line gets ``patchline.slot=a|b``. A trial with tries
    left is booted after its counter is lowered and saved; with none left, the good slot.
    """
    down = "\n".join(
        f'  {"if" if n == MAX_TRIES else "elif"} [ "${{patchline_tries}}" = {n} ]; then\n'
        f"    set patchline_tries={n - 1}\n"
        '    set slot="${patchline_trial}"'
        for n in range(MAX_TRIES, 0, -1)
    )
    up = "\n".join(
        f'    {"if" if n == 0 else "elif"} [ "${{patchline_tries_done}}" = {n} ]; then\n'
        f"      set patchline_tries_done={n + 1}"
        for n in range(MAX_TRIES)
    )
    a, b = partitions[Slot.A], partitions[Slot.B]
    return f"""# The A/B switch of Patchline's agent (patchline.agent.boot_grub.grub_script).
set timeout=0
load_env -f {env} patchline_good patchline_trial patchline_tries patchline_tries_done
set slot="${{patchline_good}}"
if [ -z "${{slot}}" ]; then
  set slot=a
fi
if [ -n "${{patchline_trial}}" ]; then
{down}
  fi
  if [ "${{slot}}" = "${{patchline_trial}}" ]; then
{up}
    fi
    save_env -f {env} patchline_tries patchline_tries_done
  fi
fi
if [ "${{slot}}" = b ]; then
  set root=({b})
else
  set root=({a})
fi
echo "Patchline: booting slot ${{slot}}"
linux /boot/vmlinuz {kernel_options} patchline.slot=${{slot}}
initrd /boot/initrd.img
boot
"""
