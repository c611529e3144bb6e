#!/usr/bin/env python3
"""Splits a perf profile of the bench's overhead scenario by contender.

    AUTHED_BENCH_WINDOWS=/tmp/windows perf record -k CLOCK_MONOTONIC -e cpu-clock -F 2000 \\
        -o /tmp/perf.data target/release/deps/sdk-<hash> --only overhead --rounds 36 \\
        --requests 4000 --control
    python3 benches/tools/split-profile.py /tmp/perf.data /tmp/windows [levels] [rows]

`levels` (default 16,64,256) picks the in-flight levels; `rows` (default 30) how many symbols
to list. Prints the client's and the server's CPU time per request for each contender, then
per category (the bench binary, the kernel, libc) and per symbol: raw, authed and control in
µs per request, and authed − raw next to control − raw (what an A/A difference looks like).
Each sample stands for 1/2000 s of CPU time (`-F 2000`).
"""
import bisect
import collections
import re
import subprocess
import sys

data, windows_file = sys.argv[1], sys.argv[2]
levels = set((sys.argv[3] if len(sys.argv) > 3 else "16,64,256").split(","))
rows = int(sys.argv[4]) if len(sys.argv) > 4 else 30
SAMPLE_US = 500.0
NAMES = ["raw", "authed", "control"]

windows = []
for line in open(windows_file):
    name, level, n, start, end = line.split()
    windows.append((int(start), int(end), name, level, int(n)))
windows.sort()
starts = [w[0] for w in windows]
requests = collections.Counter()
for _, _, name, level, n in windows:
    if level in levels:
        requests[name] += n

script = subprocess.Popen(
    ["perf", "script", "-i", data, "-F", "pid,time,ip,sym,dso", "--ns"],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
line_re = re.compile(r"\s*(\d+)\s+(\d+)\.(\d+):\s+[0-9a-f]+\s+(.*)\s+\((.*)\)\s*$")
client = None  # the bench process: the first to be sampled (the server is its child)
processes, symbols = collections.Counter(), collections.Counter()
for line in script.stdout:
    m = line_re.match(line)
    if not m:
        continue
    pid, at = int(m.group(1)), int(m.group(2)) * 10**9 + int(m.group(3))
    client = pid if client is None else client
    i = bisect.bisect_right(starts, at) - 1
    if i < 0 or at > windows[i][1] or windows[i][3] not in levels:
        continue
    name = windows[i][2]
    who = "client" if pid == client else "server"
    processes[who, name] += 1
    if who == "client":
        dso = m.group(5).split("/")[-1]
        category = "kernel" if "kernel" in dso else "libc" if "libc" in dso else dso
        symbols[name, "# " + category, ""] += 1
        symbols[name, category, m.group(4).strip()[:100]] += 1


def per_request(name, samples):
    return samples * SAMPLE_US / requests[name] if requests[name] else 0.0


present = [n for n in NAMES if requests[n]]
print("requests per contender:", dict(requests))
for who in ("client", "server"):
    print(f"{who} CPU µs per request:",
          "  ".join(f"{n} {per_request(n, processes[who, n]):.2f}" for n in present))
table = []
for key in {k[1:] for k in symbols}:
    r, a, c = (per_request(n, symbols[(n,) + key]) for n in NAMES)
    table.append((a - r, c - r, r, a, c, key))
show = lambda t: print(f"{t[2]:7.2f} {t[3]:7.2f} {t[4]:7.2f} | {t[0]:+6.2f} {t[1]:+6.2f}  {t[5][0]} {t[5][1]}")
print("    raw  authed control | a−raw  c−raw")
for t in sorted((t for t in table if t[5][0].startswith("#")), key=lambda t: -t[2]):
    show(t)
print("-- symbols authed adds most to")
for t in sorted((t for t in table if not t[5][0].startswith("#")), key=lambda t: -t[0])[:rows]:
    show(t)
print("-- symbols authed takes most from")
for t in sorted((t for t in table if not t[5][0].startswith("#")), key=lambda t: t[0])[:12]:
    show(t)
