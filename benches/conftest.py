"""pytest-benchmark set-up for the ferrotls benchmarks, and the summaries of bench_record.py and
bench_x509.py (bench_tls.py prints its own).

Run everything from the repository root with `pytest benches/`; one file, for instance (about
20 seconds; FERROTLS_BENCH_ROUNDS / FERROTLS_BENCH_RSA_ROUNDS change the rounds):

    python -m pytest benches/bench_record.py --benchmark-columns=median,min,ops,rounds \
        --benchmark-sort=name

Every record benchmark records what it measured in `benchmark.extra_info` ("kind", "op",
"cipher", "impl", "bytes", "faults_per_call"); at the end of the session `pytest_terminal_summary`
prints a table of MB/s (10**6 bytes per second, the unit of `openssl speed`) and the ratios
ferrotls / cryptography, from the medians and from the best rounds. Nothing asserts on time: the
benchmarks measure and print, and the goals are reported, not enforced. Every process runs with
the C library's default allocator.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("ferrotls benchmarks")
    group.addoption(
        "--bench-no-openssl-speed",
        action="store_true",
        default=False,
        help="do not run `openssl speed -evp aes-128-gcm` for the reference line of the summary",
    )


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


def _times(bench) -> tuple[float, float] | None:
    """(median, min) seconds per call, or None for a benchmark that recorded nothing."""
    try:
        stats = bench.stats
        return (stats.median, stats.min) if stats and stats.min > 0 else None
    except Exception:
        return None


def _fmt(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    _x509_summary(terminalreporter, config)
    bs = getattr(config, "_benchmarksession", None)
    # Only this file's kinds: other bench files (bench_tls.py) print their own summary.
    benches = [b for b in getattr(bs, "benchmarks", []) if (getattr(b, "extra_info", None) or {}).get("kind") in ("record", "rsa")]
    if not benches:
        return

    # (cipher, op) -> impl -> (MB/s at the median, MB/s at the best round)
    records: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    order: list[tuple[str, str]] = []
    rsa: dict[str, tuple[float, float]] = {}
    for b in benches:
        info = b.extra_info
        t = _times(b)
        if t is None:
            continue
        if info.get("kind") == "record":
            key = (info["cipher"], info["op"])
            if key not in records:
                records[key] = {}
                order.append(key)
            records[key][info["impl"]] = (info["bytes"] / t[0] / 1e6, info["bytes"] / t[1] / 1e6, info.get("faults_per_call"))
        elif info.get("kind") == "rsa":
            rsa[info["impl"]] = (1.0 / t[0], 1.0 / t[1])

    def ratio(row, i):
        f, c = row.get("ferrotls"), row.get("cryptography")
        return f[i] / c[i] if f and c else None

    def col(row, impl, i=0):
        return row[impl][i] if impl in row else None

    tr = terminalreporter
    tr.write_sep("=", "ferrotls vs cryptography: 1 MiB per call, 16 KiB records; MB/s = 10^6 bytes/s")
    ratios: dict[tuple[str, str], float] = {}
    if records:
        tr.write_line(f"{'cipher':<20} {'op':<5} {'ferrotls':>9} {'cryptography':>13} {'ratio':>6} {'ratio(best)':>12}"
                      f" {'page faults/call':>17}")
        tr.write_line(f"{'':<20} {'':<5} {'MB/s':>9} {'MB/s':>13} {'':>6} {'':>12} {'ferro / crypto':>17}")
        for key in sorted(order, key=lambda k: (k[1] != "seal", order.index(k))):
            row = records[key]
            r = ratio(row, 0)
            if r is not None:
                ratios[key] = r
            tr.write_line(
                f"{key[0]:<20} {key[1]:<5} {_fmt(col(row, 'ferrotls')):>9} {_fmt(col(row, 'cryptography')):>13}"
                f" {_fmt(r, '.2f'):>6} {_fmt(ratio(row, 1), '.2f'):>12}"
                f" {_fmt(col(row, 'ferrotls', 2), 'd'):>8} / {_fmt(col(row, 'cryptography', 2), 'd'):<6}"
            )
        tr.write_line("MB/s and ratio from medians; ratio(best) from the fastest round of each (less host noise).")
        tr.write_line("cryptography CBC rows: Cipher(AES, CBC) + stdlib hmac per record, MAC-then-encrypt checked in")
        tr.write_line("Python, NOT constant time; ferrotls checks MtE padding and MAC in constant time.")
        tr.write_line("page faults/call (diagnostic): ~250 = a 1 MiB buffer came fresh from the kernel on every call.")
    if rsa:
        r, rb = ratio(rsa, 0), ratio(rsa, 1)
        tr.write_line(f"{'RSA-2048 premaster':<26} {'ferrotls':>9} {'cryptography':>13} {'ratio':>6} {'ratio(best)':>12}")
        tr.write_line(f"{'ops/s':<26} {_fmt(col(rsa, 'ferrotls')):>9} {_fmt(col(rsa, 'cryptography')):>13}"
                      f" {_fmt(r, '.2f'):>6} {_fmt(rb, '.2f'):>12}")

    speed = None if config.getoption("--bench-no-openssl-speed") else _openssl_speed()
    if speed:
        tr.write_line(f"reference: openssl speed -evp aes-128-gcm -bytes 16384 -seconds 1: {speed} MB/s")

    # The issue's goals, reported (not asserted).
    tr.write_line("goals (reported, not asserted):")
    gcm = records.get(("AES_128_GCM", "seal"), {}).get("ferrotls")
    if gcm is not None:
        tr.write_line(f"  AES_128_GCM (TLS 1.2) seal > 2000 MB/s: median {gcm[0]:.0f}, best {gcm[1]:.0f} MB/s"
                      f" -> {'met' if gcm[0] > 2000 else 'NOT met'} (median)")
    if ratios:
        below = [f"{c} {o} {r:.2f}x" for (c, o), r in ratios.items() if r < 1.5]
        tr.write_line(f"  >= 1.5x cryptography per 1 MiB write: {len(ratios) - len(below)}/{len(ratios)} rows met (median)"
                      + (f"; below: {', '.join(below)}" if below else ""))
    r = ratio(rsa, 0) if rsa else None
    if r is not None:
        tr.write_line(f"  RSA >= 0.5x cryptography: {r:.2f}x -> {'met' if r >= 0.5 else 'NOT met'}")


def _x509_summary(tr, config) -> None:
    """bench_x509.py: microseconds per validation and ferrotls / pyca speed."""
    benches = [b for b in getattr(getattr(config, "_benchmarksession", None), "benchmarks", [])
               if (getattr(b, "extra_info", None) or {}).get("kind") == "x509"]
    rows: dict[str, dict[str, float]] = {}
    for b in benches:
        t = _times(b)
        if t is not None:
            rows.setdefault(b.extra_info["case"], {})[b.extra_info["impl"]] = t[0] * 1e6
    if not rows:
        return
    tr.write_sep("=", "certificate path validation (3 certificates), median microseconds per call")
    tr.write_line(f"{'case':<12} {'ferrotls':>9} {'pyca':>9} {'speed ferrotls/pyca':>20}")
    for case, row in sorted(rows.items()):
        f, p = row.get("ferrotls"), row.get("pyca")
        speed = f"{p / f:.2f}x" if f and p else "-"
        tr.write_line(f"{case:<12} {f or 0:>9.0f} {p or 0:>9.0f} {speed:>20}")
