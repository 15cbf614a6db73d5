"""The device side of the delta engine stays small: applying never loads numpy."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_delta_package_and_applying_does_not_import_numpy() -> None:
    code = (
        "import sys\n"
        "import patchline.delta\n"
        "from patchline.delta import apply_delta, read_header\n"
        "print('numpy' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
