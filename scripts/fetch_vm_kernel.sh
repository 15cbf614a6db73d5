#!/usr/bin/env bash
# Fetch Debian's amd64 kernel for the boot tests into a cache outside the repository:
#   $PATCHLINE_VM_CACHE (default ~/.cache/patchline-vm)/vmlinuz
# Uses apt-get download (the package the current linux-image-amd64 depends on) and
# dpkg-deb -x; nothing is installed on the machine. Does nothing when the kernel is cached.
set -euo pipefail
cache="${PATCHLINE_VM_CACHE:-$HOME/.cache/patchline-vm}"
if [ -s "$cache/vmlinuz" ]; then
    exit 0
fi
mkdir -p "$cache"
work="$(mktemp -d "$cache/fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
package="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')"
if [ -z "$package" ]; then
    echo "fetch_vm_kernel: apt knows no linux-image-amd64 (run apt-get update)" >&2
    exit 1
fi
(cd "$work" && apt-get download -q "$package" >/dev/null)
dpkg-deb -x "$work"/*.deb "$work/root"
kernel="$(ls "$work"/root/boot/vmlinuz-* | head -n 1)"
cp "$kernel" "$work/vmlinuz"
mv "$work/vmlinuz" "$cache/vmlinuz"   # atomic: a half-copied kernel is never cached
echo "$package" > "$cache/kernel-package"
