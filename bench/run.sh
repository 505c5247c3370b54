#!/usr/bin/env bash
# One benchmark run: our library against Debian's pasta/passt, slirp4netns
# and a veth pair, side by side, on namespaces this script creates.
#
#   bash bench/run.sh [--quick] [--profile] [--out FILE]
#
# Paths measured (the "guest" is always a network namespace):
#   ours       passt-standalone --netns (tap in the namespace, as pasta)
#   pasta      Debian's pasta --netns, the same setup
#   slirp      slirp4netns
#   veth       a veth pair straight into the host namespace (the limit)
#   ours-sock  passt-standalone -s SOCKET, behind bench/frame-pump
#   passt      Debian's passt -s SOCKET, behind the same pump
#   wire       two such pumps joined by their socket (frame-pump --listen in
#              a second namespace that runs its own servers): a translator
#              that costs nothing; for bulk TCP at MTU 65520 the limit of
#              socket mode, as veth is of tap mode (see bench/README.md)
#
# Topology: a "host" namespace with a default route (through a "router"
# namespace, only there so that the translators find a host network),
# the servers (iperf3, bench/rr) listening there, and the translators
# running there. Each path gets its own guest namespace; its client
# connects to the address that leads to the host's loopback (the gateway,
# or 10.0.2.2 for slirp4netns; the veth peer for veth).
#
# Measured, per path: TCP throughput guest->host and host->guest (iperf3,
# cubic pinned on iperf3's sockets, RUNS runs, median/min/max) at MTU 65520
# and 1500, without and with a 256 KiB window (-w 256K); UDP (1400-byte
# datagrams, -b 0) both ways with loss; 1-byte request/response rate and
# connection setup rate (bench/rr); the translator's CPU seconds per GB
# moved (utime+stime from /proc, over the TCP and UDP runs) and its peak
# RSS; in socket mode also the CPU per GB of the frame pump (the guest's
# end of it); for the iperf3 runs the whole chain's CPU (both iperf3s, all
# CPUs busy and idle), for what the costs per byte allow at most. Runs are
# interleaved across paths (run 1 of every path, then
# run 2...) so that the load of a shared machine spreads evenly. Then the
# frame-path microbenchmark (bench/frames-bench: frames/s, and
# instructions/frame under callgrind).
#
# Prints a Markdown report (also written to --out FILE). Exits non-zero only
# when it could not run (not root, missing tools, setup failed); a failed
# measurement shows as "n/a". --quick: one 1-second run, MTU 65520 only, no
# window limit (a smoke test). --profile: instead of the comparison, run our
# daemon under perf (cpu-clock sampling) for TCP guest->host and UDP
# guest->host and print where the time goes.
#
# Environment: DUR (seconds per iperf3/rr run, default 3), RUNS (default 3),
# and, to measure a part only: PATHS (default "ours pasta slirp veth
# ours-sock passt wire ours-nopoll"), MTUS ("65520 1500"), WINDOWS
# ("none 256K"), TESTS ("tcp udp rr crr frames");
# NICE (niceness of everything started, default 5: the components are niced
# equally so the comparison stays fair on a shared machine); DAEMON_BIN
# (another build of passt-standalone to measure in place of this tree's,
# for an A/B comparison).
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
TOP="$(dirname "$HERE")"
source "$TOP/scripts/as-root.sh"
QUICK=0
PROFILE=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --profile) PROFILE=1 ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,51p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

if [ $QUICK = 1 ]; then
    DUR=${DUR:-1}; RUNS=${RUNS:-1}; MTUS=${MTUS:-65520}; WINDOWS=${WINDOWS:-none}
else
    DUR=${DUR:-3}; RUNS=${RUNS:-3}; MTUS=${MTUS:-65520 1500}; WINDOWS=${WINDOWS:-none 256K}
fi
ALL_PATHS=${PATHS:-ours pasta slirp veth ours-sock passt wire ours-nopoll}
# ours-nopoll: our tap mode with the daemon's busy polling off, for the
# round-trip tests only (what polling buys and what it costs).
only_rr() { [ "$1" = ours-nopoll ]; }
TESTS=${TESTS:-tcp udp rr crr frames}
NICE=${NICE:-5}

fail() { echo "run.sh: $*" >&2; exit 1; }
for t in ip iperf3 jq python3 pasta passt slirp4netns valgrind make cc; do
    command -v $t >/dev/null || fail "$t not found (bash scripts/install-deps.sh)"
done

# ---- Build ---------------------------------------------------------------
DAEMON="${DAEMON_BIN:-$TOP/examples-c/passt-standalone}"
( cd "$TOP" && cargo build --release -q ) || fail "cargo build failed"
make -s -C "$TOP/examples-c" >/dev/null || fail "make -C examples-c failed"
make -s -C "$HERE" >/dev/null || fail "make -C bench failed"
RR="$HERE/rr"; PUMP="$HERE/frame-pump"; FB="$HERE/frames-bench"

# Everything started from here on inherits the niceness.
renice -n "$NICE" -p $$ >/dev/null

# ---- Cleanup -------------------------------------------------------------
TAG="pb$$"
WORK="$(mktemp -d /tmp/passt-bench.XXXXXX)"
PIDS=()
NSES=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.2
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for n in "${NSES[@]}"; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

newns() {
    ip netns add "$1" || fail "ip netns add $1"
    NSES+=("$1")
    ip -n "$1" link set lo up
    # Not allowed in a namespace unless the host allows cubic: best effort
    # (iperf3 pins it on its own sockets with -C cubic anyway).
    ip netns exec "$1" sysctl -qw net.ipv4.tcp_congestion_control=cubic 2>/dev/null
    ip netns exec "$1" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
}
# Starts a background process, remembering its pid (for cleanup and /proc).
spawn() { "$@" & PIDS+=($!); LAST=$!; }
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# ---- The host side -------------------------------------------------------
H=$TAG-host; R=$TAG-router
newns "$H"; newns "$R"
ip link add veth0 netns "$H" type veth peer name veth1 netns "$R" || fail "veth"
ip -n "$H" addr add 192.0.2.2/24 dev veth0
ip -n "$R" addr add 192.0.2.1/24 dev veth1
ip -n "$H" addr add 2001:db8::2/64 dev veth0 nodad
ip -n "$R" addr add 2001:db8::1/64 dev veth1 nodad
ip -n "$H" link set veth0 up; ip -n "$R" link set veth1 up
ip -n "$H" route add default via 192.0.2.1
ip -n "$H" -6 route add default via 2001:db8::1
spawn ip netns exec "$H" iperf3 -s -p 5201 >/dev/null 2>&1
IPERF_PID=$LAST
spawn ip netns exec "$H" "$RR" server 0.0.0.0 5300

# ---- Paths ---------------------------------------------------------------
declare -A TPID TARGET GNS PUMPPID
# The wire path's far side: its namespace and its pump and servers.
declare -A SRVNS SRVPIDS SRVIPERF
# Waits for tap0 in namespace $1, then gives it MTU $2 and address $3.
tap_up() {
    for _ in $(seq 100); do ip -n "$1" link show tap0 >/dev/null 2>&1 && break; sleep 0.05; done
    ip -n "$1" link set tap0 mtu "$2" up
    ip -n "$1" addr add "$3" dev tap0
}
setup_path() { # path mtu
    local p=$1 mtu=$2 g=$TAG-$1
    newns "$g"; GNS[$p]=$g
    ip netns exec "$g" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
    case $p in
    ours|ours-nopoll)
        local poll=(); [ $p = ours-nopoll ] && poll=(--busy-poll 0)
        spawn ip netns exec "$H" ${WRAP:-} "$DAEMON" -f -q ${DAEMON_OPTS:-} "${poll[@]}" --netns "/run/netns/$g" --config-net -m "$mtu" 2>"$WORK/$p.log"
        TPID[$p]=$LAST; TARGET[$p]=192.0.2.1 ;;
    pasta)
        spawn ip netns exec "$H" pasta -f -q --runas 0 --config-net -m "$mtu" -t none -u none -T none -U none --netns "/run/netns/$g" 2>"$WORK/$p.log"
        TPID[$p]=$LAST; TARGET[$p]=192.0.2.1 ;;
    slirp)
        spawn ip netns exec "$H" slirp4netns --configure --mtu "$mtu" --netns-type=path "/run/netns/$g" tap0 >"$WORK/$p.log" 2>&1
        TPID[$p]=$LAST; TARGET[$p]=10.0.2.2 ;;
    veth)
        ip link add vb0 netns "$H" type veth peer name vb1 netns "$g" || return 1
        ip -n "$H" addr add 10.9.0.1/24 dev vb0; ip -n "$g" addr add 10.9.0.2/24 dev vb1
        ip -n "$H" link set vb0 mtu "$mtu" up; ip -n "$g" link set vb1 mtu "$mtu" up
        TPID[$p]=""; TARGET[$p]=10.9.0.1 ;;
    ours-sock|passt)
        local sock="$WORK/$p.sock"
        if [ $p = passt ]; then
            spawn ip netns exec "$H" passt -f -q --runas 0 -s "$sock" -m "$mtu" -t none -u none 2>"$WORK/$p.log"
        else
            spawn ip netns exec "$H" "$DAEMON" -f -q -s "$sock" -m "$mtu" 2>"$WORK/$p.log"
        fi
        TPID[$p]=$LAST
        for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
        spawn ip netns exec "$g" "$PUMP" "$sock" tap0
        PUMPPID[$p]=$LAST
        tap_up "$g" "$mtu" 192.0.2.2/24
        ip -n "$g" route add default via 192.0.2.1
        TARGET[$p]=192.0.2.1 ;;
    wire)
        local sock="$WORK/$p.sock" s=$TAG-wire-far
        newns "$s"; SRVNS[$p]=$s
        spawn ip netns exec "$s" "$PUMP" --listen "$sock" tap0
        SRVPIDS[$p]=$LAST
        tap_up "$s" "$mtu" 192.0.2.1/24
        spawn ip netns exec "$g" "$PUMP" "$sock" tap0
        PUMPPID[$p]=$LAST
        tap_up "$g" "$mtu" 192.0.2.2/24
        spawn ip netns exec "$s" iperf3 -s -p 5201 >/dev/null 2>&1
        SRVIPERF[$p]=$LAST
        spawn ip netns exec "$s" "$RR" server 0.0.0.0 5300
        SRVPIDS[$p]="${SRVPIDS[$p]} $LAST"
        TPID[$p]=""; TARGET[$p]=192.0.2.1 ;;
    esac
    ip netns exec "$g" "$RR" wait "${TARGET[$p]}" 5300 15 || { echo "run.sh: path $p did not come up" >&2; return 1; }
}
teardown_path() {
    local p=$1
    [ -n "${PUMPPID[$p]:-}" ] && stop "${PUMPPID[$p]}"
    [ -n "${TPID[$p]:-}" ] && stop "${TPID[$p]}"
    for pid in ${SRVPIDS[$p]:-} ${SRVIPERF[$p]:-}; do stop "$pid"; done
    [ -n "${SRVNS[$p]:-}" ] && ip netns del "${SRVNS[$p]}" 2>/dev/null
    PUMPPID[$p]=""; TPID[$p]=""; SRVPIDS[$p]=""; SRVIPERF[$p]=""; SRVNS[$p]=""
    ip -n "$H" link del vb0 2>/dev/null
    ip netns del "${GNS[$p]}" 2>/dev/null
}

# CPU ticks (utime+stime) of a pid, 0 if none.
cpu_ticks() {
    [ -n "$1" ] && [ -r "/proc/$1/stat" ] || { echo 0; return; }
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
hwm_kib() {
    [ -n "$1" ] && [ -r "/proc/$1/status" ] || { echo 0; return; }
    awk '/^VmHWM/ { print $2 }' "/proc/$1/status"
}

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
# record path test run value bytes cpu_ticks udp_loss_percent loss_at_receiver_percent pump_cpu_ticks
#        guest_app_ticks host_app_ticks busy_ticks idle_ticks
# (the last four for iperf3 runs: the guest's and the host's iperf3, and
# all CPUs' busy and idle time, for the whole chain's costs)
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"; }

# CPU ticks of the children that shell $1 has waited for (cutime+cstime):
# a foreground command's time, read before and after it.
children_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $14 + $15 }'; }
# Busy and idle ticks of all CPUs together (/proc/stat; iowait is idle).
cpu_stat() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit }' /proc/stat; }

# UDP datagrams dropped at full receive buffers in namespace $1 (IPv4 and
# IPv6): where a flood's loss lands when the receiver cannot keep up.
rcvbuf_errors() {
    ip netns exec "$1" awk '
        $1 == "Udp:" && $2 ~ /^[0-9]/ { for (i = 2; i <= NF; i++) if (h[i] == "RcvbufErrors") n += $i }
        $1 == "Udp:" && $2 !~ /^[0-9]/ { for (i = 2; i <= NF; i++) h[i] = $i }
        $1 == "Udp6RcvbufErrors" { n += $2 }
        END { print n + 0 }' /proc/net/snmp /proc/net/snmp6 2>/dev/null
}

# After a failed run, a fresh iperf3 server for path $1 (the host's, or
# the wire's own).
iperf_restart() {
    if [ -n "${SRVNS[$1]:-}" ]; then
        stop "${SRVIPERF[$1]}"
        spawn ip netns exec "${SRVNS[$1]}" iperf3 -s -p 5201 >/dev/null 2>&1
        SRVIPERF[$1]=$LAST
    else
        stop "$IPERF_PID"
        spawn ip netns exec "$H" iperf3 -s -p 5201 >/dev/null 2>&1
        IPERF_PID=$LAST
    fi
    sleep 0.3
}

# measure_iperf path test run args...: one iperf3 client run in the guest.
measure_iperf() {
    local p=$1 t=$2 r=$3; shift 3
    local json="$WORK/$p.$t.$r.json" c0 c1 q0 q1 rns="" d0=0 d1=0
    local me=$BASHPID srv=${SRVIPERF[$p]:-$IPERF_PID} s0 s1 a0 a1 busy0 idle0 busy1 idle1
    case $t in
        udp-up) rns=${SRVNS[$p]:-$H} ;;
        udp-down) rns=${GNS[$p]} ;;
    esac
    [ -n "$rns" ] && d0=$(rcvbuf_errors "$rns")
    c0=$(cpu_ticks "${TPID[$p]}"); q0=$(cpu_ticks "${PUMPPID[$p]:-}"); s0=$(cpu_ticks "$srv")
    read -r busy0 idle0 < <(cpu_stat); a0=$(children_ticks "$me")
    timeout $((DUR + 20)) ip netns exec "${GNS[$p]}" iperf3 -c "${TARGET[$p]}" -p 5201 -t "$DUR" -J "$@" > "$json" 2>/dev/null
    a1=$(children_ticks "$me"); read -r busy1 idle1 < <(cpu_stat)
    c1=$(cpu_ticks "${TPID[$p]}"); q1=$(cpu_ticks "${PUMPPID[$p]:-}"); s1=$(cpu_ticks "$srv")
    [ -n "$rns" ] && d1=$(rcvbuf_errors "$rns")
    local bps bytes loss sent at_rcv=""
    bps=$(jq -r '.end.sum_received.bits_per_second // empty' "$json" 2>/dev/null)
    bytes=$(jq -r '.end.sum_received.bytes // empty' "$json" 2>/dev/null)
    loss=$(jq -r '.end.sum_received.lost_percent // empty' "$json" 2>/dev/null)
    sent=$(jq -r '.end.sum.packets // empty' "$json" 2>/dev/null)
    # Of the datagrams sent, the percentage that died at the receiver's buffer.
    [ -n "$rns" ] && [ -n "$sent" ] && [ "$sent" -gt 0 ] && at_rcv=$(( (${d1:-0} - ${d0:-0}) * 100 / sent ))
    if [ -z "$bps" ]; then
        echo "  $p $t run $r: failed ($(jq -r '.error // "no output"' "$json" 2>/dev/null))" >&2
        record "$p" "$t" "$r" "" "" "" "" "" ""
        iperf_restart "$p"
        return
    fi
    record "$p" "$t" "$r" "$bps" "$bytes" "$((c1 - c0))" "$loss" "$at_rcv" "$((q1 - q0))" \
        "$((a1 - a0))" "$((s1 - s0))" "$((busy1 - busy0))" "$((idle1 - idle0))"
}

measure_rr() { # path test(rr|crr) run
    local p=$1 t=$2 r=$3 v c0 c1
    c0=$(cpu_ticks "${TPID[$p]}")
    v=$(timeout $((DUR + 20)) ip netns exec "${GNS[$p]}" "$RR" "$t" "${TARGET[$p]}" 5300 "$DUR" 2>/dev/null)
    c1=$(cpu_ticks "${TPID[$p]}")
    # The "bytes" column holds the transactions, for CPU per transaction.
    [ -n "$v" ] && record "$p" "$t" "$r" "$v" "$((v * DUR))" "$((c1 - c0))" "" "" "" || record "$p" "$t" "$r" "" "" "" "" "" ""
}

echo "run.sh: $(date -u +%FT%TZ), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg), DUR=$DUR RUNS=$RUNS" >&2
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
START=$(date +%s)

if [ $PROFILE = 1 ]; then
    # Our daemon (tap mode, MTU 65520) under callgrind, one traffic kind
    # per daemon: instruction counts are stable on a noisy machine, and
    # the kernel's share is what the wall-clock figures show.
    # As root, so that callgrind can write its output at the end; without
    # the seccomp filter, which valgrind cannot install (no seccomp(2)).
    mkdir "$WORK/cg"
    DAEMON_OPTS="--runas 0 --no-seccomp"
    for t in tcp-up tcp-down udp-up rr; do
        WRAP="valgrind --tool=callgrind --callgrind-out-file=$WORK/cg/$t"
        setup_path ours 65520 || fail "setup failed"
        case $t in
        tcp-up) ip netns exec "${GNS[ours]}" iperf3 -c 192.0.2.1 -p 5201 -t 5 -C cubic -J > "$WORK/prof.json" ;;
        tcp-down) ip netns exec "${GNS[ours]}" iperf3 -c 192.0.2.1 -p 5201 -t 5 -C cubic -R -J > "$WORK/prof.json" ;;
        udp-up) ip netns exec "${GNS[ours]}" iperf3 -c 192.0.2.1 -p 5201 -t 5 -u -b 0 -l 1400 -J > "$WORK/prof.json" ;;
        rr) ip netns exec "${GNS[ours]}" "$RR" rr 192.0.2.1 5300 5 > "$WORK/prof.rr" ;;
        esac
        if [ $t = rr ]; then
            units=$(cat "$WORK/prof.rr"); units=$((units * 5)); unit="transaction"
        else
            units=$(jq -r '.end.sum_received.bytes' "$WORK/prof.json"); unit="byte"
        fi
        teardown_path ours
        WRAP=""
        [ -n "${PROFILE_KEEP:-}" ] && cp "$WORK/cg/$t" "$PROFILE_KEEP/"
        total=$(awk '/^totals:/ { print $2 }' "$WORK/cg/$t")
        echo "## callgrind: $t, ours (tap, offloads), $units ${unit}s moved, $total instructions"
        echo "## ($(python3 -c "print(round(${total:-0} / max(${units:-0}, 1), 3))") instructions per $unit, user space only)"
        echo '```'
        callgrind_annotate --inclusive=no "$WORK/cg/$t" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -25 |
            sed -E 's#/rustc/[0-9a-f]+/library/##; s#'"$TOP"'/##g; s# \[[^]]*\]$##'
        echo '```'
    done
    exit 0
fi

# ---- The runs --------------------------------------------------------------
declare -A HWM
for mtu in $MTUS; do
    echo "run.sh: $(date +%T) MTU $mtu: setting up" >&2
    UP=""
    for p in $ALL_PATHS; do
        if setup_path "$p" "$mtu"; then UP="$UP $p"; fi
    done
    [ -n "$UP" ] || fail "no path came up"
    for w in $WINDOWS; do
        case " $TESTS " in *" tcp "*) ;; *) continue ;; esac
        wopt=(); [ "$w" = none ] || wopt=(-w "$w")
        for dir in up down; do
            dopt=(); [ $dir = down ] && dopt=(-R)
            t="tcp-$dir-$mtu-$w"
            echo "run.sh: $(date +%T) $t" >&2
            for r in $(seq "$RUNS"); do
                for p in $UP; do only_rr $p || measure_iperf "$p" "$t" "$r" -C cubic "${wopt[@]}" "${dopt[@]}"; done
            done
        done
    done
    if [ "$mtu" = 65520 ] || [ "$MTUS" = "$mtu" ]; then
        for dir in up down; do
            case " $TESTS " in *" udp "*) ;; *) continue ;; esac
            dopt=(); [ $dir = down ] && dopt=(-R)
            echo "run.sh: $(date +%T) udp-$dir" >&2
            for r in $(seq "$RUNS"); do
                for p in $UP; do only_rr $p || measure_iperf "$p" "udp-$dir" "$r" -u -b 0 -l 1400 "${dopt[@]}"; done
            done
        done
        for t in rr crr; do
            case " $TESTS " in *" $t "*) ;; *) continue ;; esac
            echo "run.sh: $(date +%T) $t" >&2
            for r in $(seq "$RUNS"); do
                for p in $UP; do measure_rr "$p" "$t" "$r"; done
            done
        done
    fi
    for p in $UP; do
        h=$(hwm_kib "${TPID[$p]}")
        [ "${HWM[$p]:-0}" -lt "$h" ] && HWM[$p]=$h
        teardown_path "$p"
    done
done
for p in $ALL_PATHS; do record "$p" rss 1 "${HWM[$p]:-0}" "" "" "" "" ""; done

# ---- Frame-path microbenchmark --------------------------------------------
case " $TESTS " in *" frames "*) ;; *) TESTS_NOFRAMES=1 ;; esac
[ -n "${TESTS_NOFRAMES:-}" ] || echo "run.sh: $(date +%T) frames-bench" >&2
FCOUNT=1000000; [ $QUICK = 1 ] && FCOUNT=100000
[ -n "${TESTS_NOFRAMES:-}" ] || ip netns exec "$H" "$FB" all $FCOUNT > "$WORK/frames.txt" 2>/dev/null
for k in arp tcp-rst tcp-rst-64k; do
    [ -n "${TESTS_NOFRAMES:-}" ] && break
    n=20000; [ $k = tcp-rst-64k ] && n=2000
    ip netns exec "$H" valgrind --tool=callgrind --toggle-collect=passt_frame_input \
        --callgrind-out-file="$WORK/cg.$k" "$FB" $k $n >/dev/null 2>&1
    ir=$(awk '/^totals:/ { print $2 }' "$WORK/cg.$k" 2>/dev/null)
    echo "$k ${ir:-0} $n" >> "$WORK/frames-ir.txt"
done

LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
ELAPSED=$(( $(date +%s) - START ))
python3 "$HERE/report.py" "$RESULTS" "$WORK/frames.txt" "$WORK/frames-ir.txt" \
    "$DUR" "$RUNS" "$LOAD_START" "$LOAD_END" "$ELAPSED" "$(getconf CLK_TCK)" "$(nproc)" | tee "${OUT:-/dev/null}"
