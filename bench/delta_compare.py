"""Compare Patchline's delta method with bsdiff4, HDiffPatch and zstd --patch-from.

Debian packages needed: zstd (the `zstd` CLI). HDiffPatch has no Debian package; its
PyPI binding `hdiffpatch` (a run-time dependency of Patchline) is used instead. bsdiff4
comes from the `bench` extra: `.venv/bin/pip install -e '.[bench]'`.

Data: run `bench/fetch_delta_data.sh` first (writes bench/.data/, which is gitignored).

For each real pair (scipy 1.14.0 -> 1.14.1, the reference; pyarrow 15.0.1 -> 15.0.2, on
which the ADD operation was designed; opencv-python-headless 4.10.0.82 -> 4.10.0.84, added
after the method was fixed and never tuned on) every method builds a patch and applies
it, each step in its own process, timed, with the step's peak RSS taken from wait4().
Every applied image is checked against the target's SHA-256. Then Patchline's apply peak
RSS is measured on generated 256 MiB and 1 GiB pairs (random base, an overwrite and an
insertion every 16 MiB). Ratios are ours divided by each reference.

Usage: .venv/bin/python bench/delta_compare.py [--skip-synthetic]
[--pairs scipy,pyarrow,opencv] [--only-ours] [--synthetic-mib 256,1024]
(``--pairs ""`` runs only the synthetic part; ``--only-ours`` skips the reference methods,
for iterating on ours.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("PATCHLINE_DELTA_DATA", HERE / ".data"))
WORK = DATA / "work"
MiB = 1 << 20

PAIRS = {
    "scipy": ("scipy-1.14.0.tar", "scipy-1.14.1.tar"),
    "pyarrow": ("pyarrow-15.0.1.tar", "pyarrow-15.0.2.tar"),
    "opencv": (
        "opencv-python-headless-4.10.0.82.tar",
        "opencv-python-headless-4.10.0.84.tar",
    ),
}


@dataclass
class Step:
    """Wall time and peak RSS of one child process."""

    seconds: float
    peak_mib: float


@dataclass
class Row:
    """One method's figures on one pair."""

    method: str
    patch_bytes: int
    build: Step
    apply: Step | None


def run(cmd: list[str]) -> Step:
    """Run ``cmd`` to completion; its wall time and peak RSS (from wait4).

    The peak is never below this process's own peak RSS (about 35 MiB), which every
    figure reported here exceeds.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return Step(seconds, usage.ru_maxrss / 1024)


def child(*args: str) -> list[str]:
    """Command line that runs one step of this script in a fresh interpreter."""
    return [sys.executable, str(Path(__file__).resolve()), "child", *args]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# --- steps run in a child process ----------------------------------------------------


def child_main(args: list[str]) -> None:
    """Run one build or apply step named by ``args[0]``."""
    step, *paths = args
    if step == "ours-build":
        from patchline.delta import build_delta

        info = build_delta(Path(paths[0]), Path(paths[1]), Path(paths[2]))
        print(json.dumps(info.__dict__))
    elif step == "ours-apply":
        from patchline.delta import apply_delta

        src, patch, out, sha, length = paths
        apply_delta(
            Path(src), Path(patch), Path(out), expected_sha256=sha, expected_length=int(length)
        )
    elif step == "hdiffpatch-build":
        import hdiffpatch

        old, new = Path(paths[0]).read_bytes(), Path(paths[1]).read_bytes()
        Path(paths[2]).write_bytes(hdiffpatch.diff(old, new, "lzma2", validate=False))
    elif step == "hdiffpatch-apply":
        import hdiffpatch

        old, diff = Path(paths[0]).read_bytes(), Path(paths[1]).read_bytes()
        Path(paths[2]).write_bytes(hdiffpatch.apply(old, diff))
    elif step == "make-synthetic":
        write_synthetic(int(paths[0]), Path(paths[1]), Path(paths[2]))
    elif step == "bsdiff4-build":
        import bsdiff4

        bsdiff4.file_diff(paths[0], paths[1], paths[2])
    elif step == "bsdiff4-apply":
        import bsdiff4

        bsdiff4.file_patch(paths[0], paths[2], paths[1])
    else:
        raise SystemExit(f"unknown step {step}")


# --- one pair ---------------------------------------------------------------------------


def measure_pair(
    name: str, source: Path, target: Path, *, only_ours: bool = False
) -> tuple[list[Row], Row | None]:
    """Build and apply with every method (or ours only); the rows and the full-image row."""
    work = WORK / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    want = sha256_file(target)
    length = target.stat().st_size
    rows: list[Row] = []

    def check(out: Path, method: str) -> None:
        if sha256_file(out) != want:
            raise SystemExit(f"{method} did not reproduce the target of {name}")
        out.unlink()

    def python_method(method: str, ours: bool = False) -> None:
        patch, out = work / f"{method}.patch", work / f"{method}.out"
        build = run(child(f"{method}-build", str(source), str(target), str(patch)))
        extra = [want, str(length)] if ours else []
        apply = run(child(f"{method}-apply", str(source), str(patch), str(out), *extra))
        check(out, method)
        rows.append(Row(method, patch.stat().st_size, build, apply))
        print(f"  {name} {method}: {patch.stat().st_size:,} B", flush=True)

    python_method("ours", ours=True)
    if only_ours:
        shutil.rmtree(work)
        return rows, None
    python_method("hdiffpatch")
    python_method("bsdiff4")
    for level in ("-19", "-3"):
        method = f"zstd {level} --long=31 --patch-from"
        patch, out = work / f"zstd{level}.patch", work / f"zstd{level}.out"
        build = run(
            ["zstd", "-q", "-f", level, "--long=31", f"--patch-from={source}", str(target),
             "-o", str(patch)]
        )  # fmt: skip
        apply = run(
            ["zstd", "-q", "-f", "-d", "--long=31", f"--patch-from={source}", str(patch),
             "-o", str(out)]
        )  # fmt: skip
        check(out, method)
        rows.append(Row(method, patch.stat().st_size, build, apply))
        print(f"  {name} {method}: {patch.stat().st_size:,} B", flush=True)
    full = work / "full.zst"
    build = run(["zstd", "-q", "-f", "-19", "--long=31", str(target), "-o", str(full)])
    full_row = Row("full image, zstd -19 --long=31", full.stat().st_size, build, None)
    shutil.rmtree(work)
    return rows, full_row


# --- synthetic images -------------------------------------------------------------------


def write_synthetic(size: int, source: Path, target: Path) -> None:
    """A random source and a target with an overwrite and a 3,000-byte insert per 16 MiB."""
    with source.open("wb") as s, target.open("wb") as t:
        for i in range(size // (16 * MiB)):
            block = os.urandom(16 * MiB)
            s.write(block)
            edited = bytearray(block)
            at = (i * 977_211) % (15 * MiB)
            edited[at : at + 200] = os.urandom(200)
            t.write(bytes(edited[: 8 * MiB]) + os.urandom(3000) + bytes(edited[8 * MiB :]))


def make_synthetic(size: int) -> tuple[Path, Path]:
    """Generate a pair in a child process, so that this process stays small.

    wait4() reports a child's peak as at least this process's own peak RSS (the child
    starts as a copy of it), so this process must never hold image data.
    """
    source, target = WORK / f"synth-{size >> 20}-source.img", WORK / f"synth-{size >> 20}.img"
    WORK.mkdir(parents=True, exist_ok=True)
    run(child("make-synthetic", str(size), str(source), str(target)))
    return source, target


def measure_synthetic(size: int) -> Row:
    """Our build and apply on a generated pair of ``size`` bytes."""
    source, target = make_synthetic(size)
    patch, out = WORK / "synth.patch", WORK / "synth.out"
    build = run(child("ours-build", str(source), str(target), str(patch)))
    want = sha256_file(target)
    apply = run(
        child("ours-apply", str(source), str(patch), str(out), want, str(target.stat().st_size))
    )
    if sha256_file(out) != want:
        raise SystemExit("synthetic apply did not reproduce the target")
    row = Row(f"ours, synthetic {size >> 20} MiB", patch.stat().st_size, build, apply)
    for path in (source, target, patch, out):
        path.unlink()
    return row


# --- report -----------------------------------------------------------------------------


def machine() -> str:
    """nproc, memory and CPU model of this machine."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    free = subprocess.run(["free", "-g"], capture_output=True, text=True, check=True).stdout
    zstd = subprocess.run(["zstd", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"nproc: {os.cpu_count()}; CPU: {cpu}; Python {platform.python_version()}; {zstd}\n"
        f"free -g:\n{free}"
    )


def table(name: str, rows: list[Row], full: Row | None) -> str:
    """A markdown table of one pair, with ours-to-reference ratios."""
    ours = rows[0]
    lines = [
        f"### {name}",
        "",
        "| method | patch | build | apply | apply peak RSS | ours / this: size, build time |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in [*rows, *([full] if full else [])]:
        apply = f"{row.apply.seconds:.1f} s" if row.apply else "-"
        peak = f"{row.apply.peak_mib:.0f} MiB" if row.apply else "-"
        ratio = (
            f"{ours.patch_bytes / row.patch_bytes:.3f} x, "
            f"{ours.build.seconds / row.build.seconds:.2f} x"
            if row is not ours
            else "-"
        )
        lines.append(
            f"| {row.method} | {row.patch_bytes:,} B | {row.build.seconds:.1f} s "
            f"(peak {row.build.peak_mib:.0f} MiB) | {apply} | {peak} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the comparison and print markdown tables."""
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs",
        default=",".join(PAIRS),
        help=f"comma-separated pairs to run, of {', '.join(PAIRS)} (default: all)",
    )
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument(
        "--synthetic-mib", default="256,1024", help="sizes of the generated pairs, in MiB"
    )
    parser.add_argument("--only-ours", action="store_true")
    args = parser.parse_args()
    names = [name for name in args.pairs.split(",") if name]
    if unknown := [name for name in names if name not in PAIRS]:
        parser.error(f"unknown pair {', '.join(unknown)}; known: {', '.join(PAIRS)}")
    print(machine(), flush=True)
    for name in names:
        src_name, tgt_name = PAIRS[name]
        source, target = DATA / src_name, DATA / tgt_name
        if not (source.exists() and target.exists()):
            raise SystemExit(f"missing {source} or {target}: run bench/fetch_delta_data.sh")
        rows, full = measure_pair(name, source, target, only_ours=args.only_ours)
        print(
            f"\n{table(f'{src_name} -> {tgt_name} ({target.stat().st_size:,} B)', rows, full)}\n",
            flush=True,
        )
    if not args.skip_synthetic:
        sizes = [int(mib) * MiB for mib in args.synthetic_mib.split(",")]
        synth = [measure_synthetic(size) for size in sizes]
        print("\n| image | patch | build | apply | apply peak RSS |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for row in synth:
            assert row.apply is not None
            print(
                f"| {row.method} | {row.patch_bytes:,} B | {row.build.seconds:.1f} s | "
                f"{row.apply.seconds:.1f} s | {row.apply.peak_mib:.0f} MiB |"
            )


if __name__ == "__main__":
    main()
