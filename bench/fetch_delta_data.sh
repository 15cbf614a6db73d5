#!/usr/bin/env bash
# Fetch the real image pairs used by bench/delta_compare.py into bench/.data/ (gitignored).
#
# Each pair is two consecutive releases of a big PyPI package: the manylinux cp311 wheel is
# downloaded with pip, unzipped, and tarred with a fixed order, owner and mtime so that the
# tarball is a deterministic stand-in for a system image (~100+ MB each).
#
#   pair "scipy":   scipy 1.14.0 -> 1.14.1   (reference pair, ~132.7 MB each)
#   pair "pyarrow": pyarrow 15.0.1 -> 15.0.2 (second pair, ~128.5 MB each)
#   pair "opencv":  opencv-python-headless 4.10.0.82 -> 4.10.0.84 (third pair, ~141.6 MB
#                   each; added after the method was fixed, never used for tuning)
#
# Usage: bench/fetch_delta_data.sh [PYTHON]   (PYTHON defaults to .venv/bin/python)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
data="$here/.data"
py="${1:-$here/../.venv/bin/python}"
mkdir -p "$data"

fetch() {  # name version
    local name="$1" version="$2"
    local tar="$data/$name-$version.tar"
    if [[ -s "$tar" ]]; then
        echo "have $tar"
        return
    fi
    local dl="$data/dl-$name-$version"
    rm -rf "$dl" && mkdir -p "$dl"
    "$py" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
        --platform manylinux2014_x86_64 --dest "$dl" "$name==$version"
    local whl
    whl="$(ls "$dl"/*.whl)"
    mkdir -p "$dl/unpacked"
    "$py" -m zipfile -e "$whl" "$dl/unpacked"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
        -C "$dl/unpacked" -cf "$tar.part" .
    mv "$tar.part" "$tar"
    rm -rf "$dl"
    echo "wrote $tar ($(stat -c %s "$tar") bytes)"
}

fetch scipy 1.14.0
fetch scipy 1.14.1
fetch pyarrow 15.0.1
fetch pyarrow 15.0.2
fetch opencv-python-headless 4.10.0.82
fetch opencv-python-headless 4.10.0.84
