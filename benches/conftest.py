"""pytest-benchmark set-up for the ferrotls benchmarks.

Run (about a minute):

    python -m pytest benches/bench_record.py --benchmark-columns=median,min,ops,rounds \
        --benchmark-sort=name

Every benchmark records what it measured in `benchmark.extra_info` ("kind", "op", "cipher",
"impl", "bytes"); at the end of the session `pytest_terminal_summary` turns the medians into a
table of MB/s (10**6 bytes per second, the unit of `openssl speed`) and ratios ferrotls /
cryptography. Nothing here asserts on time: the benchmarks measure and print.

`--bench-mallopt` switches glibc malloc to keep freed memory (no trimming, no mmap for big
blocks) before anything runs. A 1 MiB seal allocates and frees megabyte buffers on every call;
with glibc's defaults those come from fresh mmap/brk pages and the page faults can cost more
than the cipher. Comparing a run with and without the flag shows how much.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import shutil
import subprocess

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("ferrotls benchmarks")
    group.addoption(
        "--bench-mallopt",
        action="store_true",
        default=False,
        help="set glibc mallopt(M_TRIM_THRESHOLD, M_MMAP_THRESHOLD) high so big buffers are reused "
        "instead of page-faulted in on every call (diagnostic)",
    )
    group.addoption(
        "--bench-no-openssl-speed",
        action="store_true",
        default=False,
        help="do not run `openssl speed -evp aes-128-gcm` for the reference line of the summary",
    )


_MALLOPT_NOTE: list[str] = []


def pytest_configure(config):
    if not config.getoption("--bench-mallopt"):
        return
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        ok = libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) and libc.mallopt(M_MMAP_THRESHOLD, 1 << 25)
        _MALLOPT_NOTE.append("glibc mallopt: trim threshold 1 GiB, mmap threshold 32 MiB" if ok else "mallopt failed")
    except (OSError, AttributeError) as e:  # not glibc
        _MALLOPT_NOTE.append(f"mallopt unavailable: {e}")


def pytest_collect_file(file_path, parent):
    # `pytest benches/` collects bench_*.py too (pyproject's python_files is the default).
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def _openssl_speed() -> str | None:
    """`openssl speed -evp aes-128-gcm` at 16 KiB, in MB/s (one second of work)."""
    exe = shutil.which("openssl")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "speed", "-evp", "aes-128-gcm", "-bytes", "16384", "-seconds", "1"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"^AES-128-GCM\s+([0-9.]+)k", out, re.M)
    if not m:
        return None
    return f"{float(m.group(1)) / 1000:.0f}"


def _median(bench) -> float | None:
    try:
        stats = bench.stats
        return stats.median if stats and stats.median > 0 else None
    except Exception:  # a benchmark that failed before recording anything
        return None


def _fmt(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    bs = getattr(config, "_benchmarksession", None)
    benches = [b for b in getattr(bs, "benchmarks", []) if getattr(b, "extra_info", None)]
    if not benches:
        return

    records: dict[tuple[str, str], dict[str, float]] = {}
    order: list[tuple[str, str]] = []
    rsa: dict[str, float] = {}
    for b in benches:
        info = b.extra_info
        med = _median(b)
        if med is None:
            continue
        if info.get("kind") == "record":
            key = (info["cipher"], info["op"])
            if key not in records:
                records[key] = {}
                order.append(key)
            records[key][info["impl"]] = info["bytes"] / med / 1e6
        elif info.get("kind") == "rsa":
            rsa[info["impl"]] = 1.0 / med

    tr = terminalreporter
    tr.write_sep("=", "ferrotls vs cryptography (medians; MB/s = 10^6 bytes/s; 1 MiB per call, 16 KiB records)")
    if _MALLOPT_NOTE:
        tr.write_line("malloc: " + "; ".join(_MALLOPT_NOTE))
    ratios: dict[tuple[str, str], float] = {}
    if records:
        tr.write_line(f"{'cipher':<26} {'op':<5} {'ferrotls MB/s':>14} {'cryptography MB/s':>18} {'ratio':>7}")
        for cipher, op in sorted(order, key=lambda k: (k[1] != "seal", order.index(k))):
            row = records[(cipher, op)]
            f, c = row.get("ferrotls"), row.get("cryptography")
            ratio = f / c if f and c else None
            if ratio is not None:
                ratios[(cipher, op)] = ratio
            tr.write_line(f"{cipher:<26} {op:<5} {_fmt(f):>14} {_fmt(c):>18} {_fmt(ratio, '.2f'):>7}")
        tr.write_line("(cryptography CBC rows: Cipher(AES, CBC) + stdlib hmac per record, MAC-then-encrypt "
                      "checked in Python, NOT constant time; ferrotls opens MtE records in constant time)")
    if rsa:
        f, c = rsa.get("ferrotls"), rsa.get("cryptography")
        ratio = f / c if f and c else None
        tr.write_line(f"{'RSA-2048 premaster':<32} {'ferrotls ops/s':>14} {'cryptography ops/s':>18} {'ratio':>7}")
        tr.write_line(f"{'':<32} {_fmt(f):>14} {_fmt(c):>18} {_fmt(ratio, '.2f'):>7}")

    speed = None if config.getoption("--bench-no-openssl-speed") else _openssl_speed()
    if speed:
        tr.write_line(f"reference: openssl speed -evp aes-128-gcm -bytes 16384 -seconds 1: {speed} MB/s")

    # The goals, reported (not asserted).
    tr.write_line("goals (reported, not asserted):")
    gcm = records.get(("AES_128_GCM", "seal"), {}).get("ferrotls")
    if gcm is not None:
        tr.write_line(f"  AES_128_GCM (TLS 1.2) seal > 2000 MB/s: {gcm:.0f} MB/s -> {'met' if gcm > 2000 else 'NOT met'}")
    if ratios:
        below = [f"{c} {o} {r:.2f}x" for (c, o), r in ratios.items() if r < 1.5]
        tr.write_line(f"  >= 1.5x cryptography per 1 MiB write: {len(ratios) - len(below)}/{len(ratios)} rows met"
                      + (f"; below: {', '.join(below)}" if below else ""))
    if rsa.get("ferrotls") and rsa.get("cryptography"):
        r = rsa["ferrotls"] / rsa["cryptography"]
        tr.write_line(f"  RSA >= 0.5x cryptography: {r:.2f}x -> {'met' if r >= 0.5 else 'NOT met'}")
