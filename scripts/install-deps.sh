#!/usr/bin/env bash
# Installs what the demo, the tests and the benchmark need on Debian 12:
# QEMU, a kernel image and busybox for the test guest, iproute2 for
# namespaces, the peers we compare with (passt/pasta, slirp4netns), iperf3,
# socat, tcpdump, the C toolchain, valgrind and jq (benchmark). Idempotent;
# needs root (asks sudo for it when run as someone else).
set -euo pipefail
source "$(dirname "$0")/as-root.sh"

PACKAGES=(
    qemu-system-x86 linux-image-amd64 busybox-static cpio gzip kmod
    iproute2 iputils-ping python3 socat tcpdump iperf3 passt slirp4netns
    gcc g++ make pkg-config valgrind jq binutils
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
    echo "install-deps: cargo not found: install a Rust toolchain (rustup) first" >&2
    exit 1
fi
