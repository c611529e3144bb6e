#!/usr/bin/env python3
"""Requests per CPU-second: `authed` against Python's Authlib over httpx, on the bench's server.

    cargo bench --no-run --bench sdk
    python3 -m venv /tmp/authlib && /tmp/authlib/bin/pip install httpx authlib
    /tmp/authlib/bin/python benches/tools/authlib-compare.py target/release/deps/sdk-<hash> [n] [k]

Both send `n` (default 20,000) authenticated `GET /item` requests and decode the JSON body,
`k` (default 16) at a time, against the bench's server process (`AUTHED_BENCH_ROLE=server`),
each with a refresh token the first request turns into an access token. Authlib's
`AsyncOAuth2Client` refreshes as `authed` does, through the token endpoint. The CPU time is
the client process's (`getrusage`): for `authed`, the bench binary's `--profile authed n
--in-flight k` line; for Authlib, this process's own, measured around the requests alone.
Three rounds alternate the two; the ratio of the medians is printed.
"""
import asyncio
import os
import re
import resource
import statistics
import subprocess
import sys

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client

binary = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
k = int(sys.argv[3]) if len(sys.argv) > 3 else 16


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def authlib_run(port):
    base = f"http://127.0.0.1:{port}"
    client = AsyncOAuth2Client(
        client_id="bench",
        token_endpoint=f"{base}/token/0/3600",
        # Expired: the first request refreshes it, as `authed`'s first request mints one.
        token={
            "access_token": "",
            "refresh_token": "bench-refresh",
            "token_type": "Bearer",
            "expires_at": 1,
        },
        limits=httpx.Limits(max_connections=k, max_keepalive_connections=k),
    )
    url = f"{base}/item"
    left = n

    async def worker():
        nonlocal left
        while left > 0:
            left -= 1
            response = await client.get(url)
            response.raise_for_status()
            response.json()

    # Warm: the token, and the connections `k` workers need.
    await client.get(url)
    left = 4 * k
    await asyncio.gather(*(worker() for _ in range(k)))
    left = n
    before = cpu_seconds()
    await asyncio.gather(*(worker() for _ in range(k)))
    spent = cpu_seconds() - before
    await client.aclose()
    return spent / n * 1e6


def authlib_us():
    server = subprocess.Popen(
        [binary],
        env={**os.environ, "AUTHED_BENCH_ROLE": "server"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(server.stdout.readline())
        return asyncio.run(authlib_run(port))
    finally:
        server.kill()
        server.wait()


def authed_us():
    out = subprocess.run(
        [binary, "--profile", "authed", str(n), "--in-flight", str(k)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(re.search(r"([0-9.]+) µs CPU", out).group(1))


authed, authlib = [], []
for i in range(3):
    authed.append(authed_us())
    authlib.append(authlib_us())
    print(
        f"round {i + 1}: authed {authed[-1]:.1f} µs, "
        f"Authlib + httpx {authlib[-1]:.1f} µs CPU per request"
    )
a, b = statistics.median(authed), statistics.median(authlib)
print(
    f"{n} requests, {k} in flight: authed {a:.1f} µs ({1e6 / a:,.0f} per CPU-second), "
    f"Authlib + httpx {b:.1f} µs ({1e6 / b:,.0f} per CPU-second): authed {b / a:.1f}× the requests per CPU-second"
)
