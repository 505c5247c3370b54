#!/usr/bin/env bash
# The demo: builds the library, the standalone daemon and qrap, then boots a
# tiny QEMU guest through qrap against our daemon, in namespaces created for
# the occasion (a "host" with a real router beside it). The guest gets its
# addresses by DHCP, SLAAC and DHCPv6, pings the gateway, downloads a file
# from a server on the host side and checks it, does UDP, and the host
# reaches a service in the guest through the forwarded port 8080.
# Everything is removed afterwards. Needs root on Debian 12 (asks sudo for
# it when run as someone else).
set -euo pipefail
source "$(dirname "$0")/as-root.sh"
cd "$(dirname "$0")/.."
ROOT=$PWD
KIT=${KIT:-$ROOT/../shared/guest}
[ -d "$KIT" ] || { echo "demo: the guest kit is expected at $KIT (set KIT=...)" >&2; exit 1; }

bash scripts/install-deps.sh
cargo build --release
make -s -C examples-c
make -s -C qrap

echo "demo: booting a guest through qrap against passt-standalone (about 30 s)"
# The kit's hermetic example, run with our daemon and our qrap (first in PATH).
PATH="$ROOT/qrap:$PATH" NETMODE=qrap PASST="$ROOT/examples-c/passt-standalone" \
    bash "$KIT/example-upstream-passt.sh"
