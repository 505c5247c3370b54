#!/usr/bin/env bash
# Sets up and runs every test: unit tests, real-socket tests, namespace
# tests (tap devices in namespaces the tests create), the C programs and
# header checks, and end-to-end tests with a QEMU guest. Needs root (asks
# sudo for it when run as someone else).
set -euo pipefail
source "$(dirname "$0")/as-root.sh"
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# The release build for the end-to-end tests (the daemon as users build
# it); everything else runs against the "checked" profile: optimised (the
# transfer tests move hundreds of MiB) with overflow checks and
# debug_assert! on.
cargo build --release
cargo build --profile checked
cargo test --profile checked --no-fail-fast -- --test-threads=2
