#!/usr/bin/env bash
# Sets up and runs every test: unit tests, real-socket tests, namespace
# tests (tap devices in namespaces the tests create), the C programs and
# header checks, and end-to-end tests with a QEMU guest. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# Release builds: the transfer tests move hundreds of MiB.
cargo build --release
cargo test --release --no-fail-fast -- --test-threads=2
