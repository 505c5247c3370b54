#!/bin/sh
# Runs one fuzz target in a network namespace of its own (see README.md).
#
#   fuzz/run.sh TARGET [SECONDS] [libFuzzer options...]
#
# Builds with `cargo fuzz build -s none` (no sanitizer: works on a stable
# toolchain), then runs `cargo fuzz run` inside `unshare -n` with loopback
# up and ping sockets allowed there: the harness opens real host sockets,
# and a fresh namespace keeps fuzzed destinations off every real network.
# New corpus entries go to fuzz/work/TARGET/corpus and libFuzzer's log to
# fuzz/work/TARGET/fuzz-0.log (neither is committed); the committed seeds
# in fuzz/corpus/TARGET are read too; crashes land in fuzz/artifacts/TARGET.
# Needs root (or unprivileged user namespaces: then `unshare -rn`).
set -eu
cd "$(dirname "$0")"
target=${1:?usage: run.sh TARGET [SECONDS] [libFuzzer options...]}
seconds=${2:-1800}
shift $(( $# >= 2 ? 2 : 1 ))
cargo fuzz build -s none "$target"
# A variant target (frames_mtu576) shares its base target's seeds.
seeds="corpus/$target"
[ -d "$seeds" ] || seeds="corpus/${target%%_*}"
# libFuzzer writes its job log (fuzz-0.log) in the working directory: one per target.
mkdir -p "work/$target/corpus" "artifacts/$target"
cd "work/$target"
userns=""
[ "$(id -u)" = 0 ] || userns="-r"
exec unshare $userns -n sh -c '
    target=$1 seeds=$2 seconds=$3
    shift 3
    ip link set lo up
    sysctl -qw net.ipv4.ping_group_range="0 2147483647"
    exec nice -n 10 cargo fuzz run --fuzz-dir ../.. -s none "$target" corpus "../../$seeds" -- \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -jobs=1 -workers=1 -print_final_stats=1 "$@"
' sh "$target" "$seeds" "$seconds" "$@"
