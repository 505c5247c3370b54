#!/usr/bin/env python3
"""Turns bench/run.sh's raw results into the Markdown report.

Arguments: results.tsv frames.txt frames-ir.txt DUR RUNS LOAD_START LOAD_END
ELAPSED CLK_TCK NCPU. results.tsv rows: path, test, run, value, bytes, CPU
ticks of the translator during the run, UDP loss percent, the percentage of
the datagrams sent that were dropped at the receiver's full socket buffer,
CPU ticks of the frame pump (socket mode and the wire) during the run, and
for iperf3 runs the CPU ticks of the guest's iperf3, of the host's, and of
all CPUs busy and idle.
"""
import statistics
import sys

(res_file, frames_file, ir_file, dur, runs, load0, load1, elapsed, clk_tck, ncpu) = sys.argv[1:11]
CLK = float(clk_tck)
NCPU = int(ncpu)

# (path, test) -> list of (value, bytes, ticks, loss, loss at the receiver, pump ticks,
# guest's iperf3 ticks, host's iperf3 ticks, all CPUs' busy ticks, idle ticks)
rows = {}
for line in open(res_file):
    f = line.rstrip("\n").split("\t")
    if len(f) < 7:
        continue
    path, test, _run, value, nbytes, ticks, loss = f[:7]
    at_receiver = f[7] if len(f) > 7 else ""
    pump_ticks = f[8] if len(f) > 8 else ""
    chain = (f[9:13] + [""] * 4)[:4]
    if value == "":
        rows.setdefault((path, test), [])
        continue
    num = lambda s: float(s) if s not in ("", None) else None
    rows.setdefault((path, test), []).append(
        (float(value), num(nbytes), num(ticks), num(loss), num(at_receiver), num(pump_ticks))
        + tuple(num(c) for c in chain))

TAP = ["ours", "pasta", "slirp", "veth"]
SOCK = ["ours-sock", "passt"]
NAMES = {"ours": "ours (tap)", "pasta": "pasta", "slirp": "slirp4netns", "veth": "veth",
         "ours-sock": "ours (socket)", "passt": "passt", "ours-nopoll": "ours (tap, --busy-poll 0)",
         "wire": "wire (two pumps)"}


def med(path, test):
    v = [r[0] for r in rows.get((path, test), [])]
    return statistics.median(v) if v else None


def cell(path, test, scale, fmt):
    v = [r[0] / scale for r in rows.get((path, test), [])]
    if not v:
        return "n/a"
    s = fmt.format(statistics.median(v))
    if len(v) > 1:
        s += " (" + fmt.format(min(v)) + "–" + fmt.format(max(v)) + ")"
    loss = [r[3] for r in rows.get((path, test), []) if r[3] is not None]
    if loss:
        s += ", {:.0f} % loss".format(statistics.median(loss))
        at_rcv = [r[4] for r in rows.get((path, test), []) if r[4] is not None]
        if at_rcv:
            s += " ({:.0f} at the receiver)".format(statistics.median(at_rcv))
    return s


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return "{:.2f}x".format(a / b)


# Columns of a row's CPU ticks: the translator's, the frame pump's, the
# guest's and the host's iperf3, and all CPUs' busy and idle time.
TRANSLATOR, PUMP, GUEST_APP, HOST_APP, BUSY, IDLE = 2, 5, 6, 7, 8, 9


def cpu_seconds(path, test, column=TRANSLATOR):
    return sum(r[column] or 0 for r in rows.get((path, test), [])) / CLK


def cpu_per_gb(path, test, column=TRANSLATOR):
    rs = rows.get((path, test), [])
    nbytes = sum(r[1] or 0 for r in rs)
    if not rs or nbytes == 0:
        return None
    return cpu_seconds(path, test, column) / (nbytes / 1e9)


def label(test):
    p = test.split("-")
    if p[0] == "tcp":
        d = "guest->host" if p[1] == "up" else "host->guest"
        w = "" if p[3] == "none" else ", -w " + p[3]
        return "TCP {}, MTU {}{}".format(d, p[2], w)
    if p[0] == "udp":
        return "UDP {} (1400 B, -b 0), received".format("guest->host" if p[1] == "up" else "host->guest")
    return {"rr": "TCP RR (1 B round trips/s)", "crr": "TCP CRR (connections/s)"}.get(test, test)


tests = []
for (_p, t) in rows:
    if t != "rss" and t not in tests:
        tests.append(t)
tests.sort(key=lambda t: (["tcp", "udp", "rr", "crr"].index(t.split("-")[0]),
                          -int(t.split("-")[2]) if t.startswith("tcp") else 0,
                          t.split("-")[3] if t.startswith("tcp") else "",
                          t.split("-")[1] != "up" if "-" in t else False))

out = []
w = out.append
w("# passt-rs benchmark")
w("")
w("One run of `bench/run.sh`: {} run(s) of {} s per figure, median (min–max); "
  "congestion control cubic on iperf3's sockets (-C cubic; the translators' own sockets use the namespace default, bbr here); load average {} at the start, {} at the end; "
  "{} s in all. Ratios are ours / peer (same run).".format(runs, dur, load0, load1, elapsed))
w("")
w("## Throughput (Gbit/s) and rates")
w("")
w("| test | ours (tap) | pasta | ours/pasta | slirp4netns | veth | ours/veth | ours (socket) | passt | ours/passt "
  "| wire | ours (socket)/wire |")
w("|---|---|---|---|---|---|---|---|---|---|---|---|")
for t in tests:
    is_rate = t in ("rr", "crr")
    scale, fmt = (1, "{:,.0f}") if is_rate else (1e9, "{:.2f}")
    w("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
        label(t), cell("ours", t, scale, fmt), cell("pasta", t, scale, fmt),
        ratio(med("ours", t), med("pasta", t)), cell("slirp", t, scale, fmt), cell("veth", t, scale, fmt),
        ratio(med("ours", t), med("veth", t)), cell("ours-sock", t, scale, fmt),
        cell("passt", t, scale, fmt), ratio(med("ours-sock", t), med("passt", t)),
        cell("wire", t, scale, fmt), ratio(med("ours-sock", t), med("wire", t))))
w("")
w("wire: two frame pumps joined by their UNIX socket, no translator between them (the far "
  "namespace runs its own servers): for bulk TCP at MTU 65520 about the best a socket-mode "
  "translator behind this pump can do, as veth is for tap mode; no bound elsewhere (at MTU 1500 "
  "its far end writes each frame to a tap, where a translator writes large sends to a socket; "
  "the pumps neither poll nor yield).")
w("")
rr_tests = [t for t in tests if t in ("rr", "crr")]
if rr_tests:
    w("## Round trips: what busy polling buys and costs")
    w("")
    w("The daemon polls for a while after traffic before it sleeps (`--busy-poll`, adaptive, "
      "default 200 us); `--busy-poll 0` is the same daemon without it. CPU: microseconds of the "
      "translating process per transaction.")
    w("")
    w("| test | ours (tap) | ours (tap, --busy-poll 0) | pasta | no-poll/pasta | CPU us: ours (tap) | "
      "ours (tap, --busy-poll 0) | pasta | ours (socket) | passt |")
    w("|---|---|---|---|---|---|---|---|---|---|")

    def us_per(path, test):
        v = cpu_per_gb(path, test)  # seconds per 1e9 transactions
        return "n/a" if v is None else "{:.1f}".format(v / 1e3)
    for t in rr_tests:
        w("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            label(t), cell("ours", t, 1, "{:,.0f}"), cell("ours-nopoll", t, 1, "{:,.0f}"),
            cell("pasta", t, 1, "{:,.0f}"), ratio(med("ours-nopoll", t), med("pasta", t)),
            us_per("ours", t), us_per("ours-nopoll", t), us_per("pasta", t), us_per("ours-sock", t),
            us_per("passt", t)))
    w("")
w("## CPU seconds per GB moved (the translating process, all runs of a test)")
w("")
w("| test | ours (tap) | pasta | ours/pasta | slirp4netns | ours (socket) | passt | ours/passt |")
w("|---|---|---|---|---|---|---|---|")
fmt2 = lambda v: "n/a" if v is None else "{:.2f}".format(v)
for t in tests:
    if t in ("rr", "crr"):
        continue
    c = {p: cpu_per_gb(p, t) for p in TAP + SOCK}
    w("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
        label(t), fmt2(c["ours"]), fmt2(c["pasta"]), ratio(c["ours"], c["pasta"]), fmt2(c["slirp"]),
        fmt2(c["ours-sock"]), fmt2(c["passt"]), ratio(c["ours-sock"], c["passt"])))
w("")
if any(p in SOCK + ["wire"] for (p, _t) in rows):
    w("## Socket mode: the translator beside its frame pump")
    w("")
    w("CPU seconds per GB moved, and in brackets the share of one CPU used over the runs, of the "
      "translator and of the guest's frame pump (the same program for every path: one tap read or "
      "write per frame). Where the pump needs as much CPU as the translator or more, the chain "
      "(sender, pump, translator, receiver on two CPUs) rather than the translator sets the rate.")
    w("")
    w("| test | ours (socket) | its pump | passt | its pump | wire: pump |")
    w("|---|---|---|---|---|---|")

    def cost(path, test, column):
        v = cpu_per_gb(path, test, column)
        if v is None:
            return "n/a"
        share = cpu_seconds(path, test, column) / (float(dur) * len(rows[(path, test)]))
        return "{:.2f} ({:.0f} %)".format(v, 100 * share)
    for t in tests:
        if t in ("rr", "crr"):
            continue
        w("| {} | {} | {} | {} | {} | {} |".format(
            label(t), cost("ours-sock", t, TRANSLATOR), cost("ours-sock", t, PUMP),
            cost("passt", t, TRANSLATOR), cost("passt", t, PUMP), cost("wire", t, PUMP)))
    w("")


def chain_costs(path, test):
    """CPU seconds per GB moved of each part of the chain over all runs
    (guest's iperf3, translator, pump, host's iperf3, the rest, all busy
    CPUs together) and the share of all CPUs left idle; None without the
    whole chain's figures."""
    rs = rows.get((path, test), [])
    if not rs or any(r[c] is None for r in rs for c in (GUEST_APP, HOST_APP, BUSY, IDLE)):
        return None
    gb = sum(r[1] or 0 for r in rs) / 1e9
    if gb == 0:
        return None
    ticks = {c: sum(r[c] or 0 for r in rs) for c in (TRANSLATOR, PUMP, GUEST_APP, HOST_APP, BUSY, IDLE)}
    named = ticks[TRANSLATOR] + ticks[PUMP] + ticks[GUEST_APP] + ticks[HOST_APP]
    per_gb = lambda t: t / CLK / gb
    return {"guest": per_gb(ticks[GUEST_APP]), "translator": per_gb(ticks[TRANSLATOR]),
            "pump": per_gb(ticks[PUMP]), "host": per_gb(ticks[HOST_APP]),
            "rest": per_gb(max(ticks[BUSY] - named, 0)), "busy": per_gb(ticks[BUSY]),
            "idle": ticks[IDLE] / max(ticks[BUSY] + ticks[IDLE], 1)}


def ceilings(path, test):
    """Rates (bytes/s) at which the chain's measured costs per byte would
    keep every CPU busy: as measured, and with a translator that cost
    nothing. Upper bounds, if costs per byte do not fall with the rate.
    None for a UDP flood: its sender takes whatever CPU it gets, so its
    cost per byte received is no constant."""
    c = chain_costs(path, test)
    if c is None or c["busy"] <= 0 or test.startswith("udp"):
        return None
    free = c["busy"] - c["translator"]
    return (NCPU / c["busy"] * 1e9, NCPU / free * 1e9 if free > 0 else None)


def flood_ceilings(path, test):
    """For a UDP flood (udp-up, udp-down): the share of the CPUs its sender
    held, and the rates (bytes/s) at which the rest of the chain's costs
    per byte would keep the CPUs it left busy: as measured, and with a
    translator that cost nothing. Upper bounds if the sender keeps its
    share and the costs per byte do not fall with the rate; None without
    the chain's figures."""
    c = chain_costs(path, test)
    if c is None or c["busy"] <= 0:
        return None
    sender = "guest" if test == "udp-up" else "host"
    # The sender's share of the busy time, times the CPUs that were busy.
    held = NCPU * (1 - c["idle"]) * c[sender] / c["busy"]
    left = NCPU - held
    others = c["busy"] - c[sender]
    free = others - c["translator"]
    if left <= 0 or others <= 0:
        return None
    return (held, left / others * 1e9, left / free * 1e9 if free > 0 else None)


def gbit(bytes_per_s):
    return "-" if bytes_per_s is None else "{:.2f}".format(bytes_per_s * 8 / 1e9)


chain_tests = [t for t in tests if t not in ("rr", "crr")]
if any(chain_costs(p, t) for p in NAMES for t in chain_tests):
    w("## Where the CPU goes: the whole chain")
    w("")
    w("CPU seconds per GB moved over all runs of a test, of each part of the chain: the guest's "
      "iperf3 (the sender guest->host, the receiver host->guest), the translator, the frame pump, "
      "the host's iperf3, and the rest (kernel threads such as ksoftirqd, the wire's far pump, "
      "anything else running); the share of all {} CPUs left idle; and the rates at which these "
      "costs per byte would keep every CPU busy, as measured and with a translator that cost "
      "nothing: upper bounds (if costs per byte do not fall with the rate) on what a path can reach "
      "on this machine. None for the UDP floods (-b 0): there the sender takes whatever CPU it "
      "gets, and its cost per byte received grows with the loss.".format(NCPU))
    w("")
    w("| test | path | Gbit/s | guest's iperf3 | translator | pump | host's iperf3 | rest | all | idle "
      "| ceiling, Gbit/s | with a free translator |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for t in chain_tests:
        for p in ["ours", "pasta", "slirp", "veth", "ours-sock", "passt", "wire"]:
            c = chain_costs(p, t)
            if c is None:
                continue
            hi, free = ceilings(p, t) or (None, None)
            w("| {} | {} | {} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {:.0f} % | {} | {} |".format(
                label(t), NAMES[p], "{:.2f}".format(med(p, t) / 1e9), c["guest"], c["translator"], c["pump"], c["host"],
                c["rest"], c["busy"], 100 * c["idle"], gbit(hi),
                gbit(free if p not in ("veth", "wire") else None)))
    w("")
rss = {p: med(p, "rss") for p in TAP + SOCK}
w("Peak RSS (VmHWM) of the translator: " + ", ".join(
    "{} {:.1f} MiB".format(NAMES[p], rss[p] / 1024) for p in ["ours", "pasta", "slirp", "ours-sock", "passt"]
    if rss[p]) + ".")
w("")

w("## Frame path without sockets (bench/frames-bench)")
w("")
w("| frame | frames/s | Gbit/s in | instructions/frame (callgrind) |")
w("|---|---|---|---|")
ir = {}
try:
    for line in open(ir_file):
        k, total, n = line.split()
        ir[k] = float(total) / float(n) if float(total) > 0 else None
except OSError:
    pass
try:
    for line in open(frames_file):
        f = line.split()
        if len(f) < 10:
            continue
        k = f[0]
        fps = float(f[8])
        gbit = float(f[10])
        w("| {} | {:,.0f} | {:.1f} | {} |".format(k, fps, gbit, "n/a" if ir.get(k) is None else "{:,.0f}".format(ir[k])))
except OSError:
    pass
w("")
w("arp: ARP request answered; tcp-rst: 1460-byte TCP segment of no connection, answered with RST "
  "(validation and L4 checksum of the whole segment, lookup, one frame built); tcp-rst-64k: the same, 65480 bytes.")
w("")

# Targets from issue #7.
w("## Targets")
w("")
checks = []


def chk(desc, ok):
    checks.append("* [{}] {}".format("x" if ok else " ", desc))


def ge(a, b, k):
    return a is not None and b is not None and a >= k * b


def spread(path, test):
    v = [r[0] for r in rows.get((path, test), [])]
    return (min(v), max(v)) if v else None


def overlap_note(ours, peer, test):
    """Where the two paths' runs overlap, a verdict either way may be the
    run-to-run noise of a shared machine rather than a difference."""
    a, b = spread(ours, test), spread(peer, test)
    if a is None or b is None or a[1] < b[0] or b[1] < a[0]:
        return ""
    return "; the runs overlap: {:.2f}–{:.2f} against {:.2f}–{:.2f}".format(a[0] / 1e9, a[1] / 1e9, b[0] / 1e9, b[1] / 1e9)


def bound_note(path, test, ref):
    """For a throughput target missed: what the chain's costs per byte
    allow at most, as a multiple of the reference rate `ref` (bits/s)."""
    c = ceilings(path, test)
    if c is None or not ref:
        return ""
    hi, free = c
    s = "; at these costs per byte, with every CPU busy: at most {:.2f}x".format(hi * 8 / ref)
    if free is not None:
        s += ", {:.2f}x with a translator that cost nothing".format(free * 8 / ref)
    return s


def flood_bound_note(path, test, ref, peer):
    """For a UDP target missed: what the chain's costs per byte allow on
    the CPUs the sender left, as a multiple of `peer`'s rate `ref`."""
    c = flood_ceilings(path, test)
    if c is None or not ref:
        return ""
    held, hi, free = c
    s = "; the sender held {:.2f} of {} CPUs, and on the rest these costs per byte allow at most {:.2f}x {}".format(
        held, NCPU, hi * 8 / ref, peer)
    if free is not None:
        s += ", {:.2f}x with a translator that cost nothing".format(free * 8 / ref)
    return s


for (ours, peer) in (("ours", "pasta"), ("ours-sock", "passt")):
    for t in tests:
        if t.startswith("tcp"):
            a, b = med(ours, t), med(peer, t)
            chk("{} {}: >= 1.0x {} ({}{})".format(NAMES[ours], label(t), peer, ratio(a, b), overlap_note(ours, peer, t)),
                ge(a, b, 1.0))
    for t in ("tcp-up-65520-none",):
        a, v = med(ours, t), med("veth", t)
        limit = ""
        if ours == "ours-sock" and med("wire", t) is not None:
            limit = "; the wire, no translator at all: {} of veth".format(ratio(med("wire", t), v))
        ok = ge(a, v, 0.5)
        chk("{} {}: >= 0.5x veth ({}{}{})".format(NAMES[ours], label(t), ratio(a, v), limit,
                                                   "" if ok else bound_note(ours, t, v)), ok)
    for t in ("udp-up", "udp-down"):
        a, b = med(ours, t), med(peer, t)
        la = [r[3] for r in rows.get((ours, t), []) if r[3] is not None]
        lb = [r[3] for r in rows.get((peer, t), []) if r[3] is not None]
        lower = bool(la and lb and statistics.median(la) <= statistics.median(lb))
        ok = ge(a, b, 2.0) and lower
        chk("{} {}: >= 2x {} at lower loss ({}, loss {} vs {}{})".format(
            NAMES[ours], label(t), peer, ratio(a, b),
            "{:.0f} %".format(statistics.median(la)) if la else "n/a",
            "{:.0f} %".format(statistics.median(lb)) if lb else "n/a",
            "" if ok else flood_bound_note(ours, t, b, peer)), ok)
    for t in ("rr", "crr"):
        a, b = med(ours, t), med(peer, t)
        chk("{} {}: >= 1.5x {} ({})".format(NAMES[ours], label(t), peer, ratio(a, b)), ge(a, b, 1.5))
    for t in tests:
        if t in ("rr", "crr"):
            continue
        a, b = cpu_per_gb(ours, t), cpu_per_gb(peer, t)
        chk("{} CPU/GB {}: <= {} ({})".format(NAMES[ours], label(t), peer, ratio(a, b)),
            a is not None and b is not None and a <= b)
w("\n".join(checks))
w("")
print("\n".join(out))
