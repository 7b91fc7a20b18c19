"""ferrotls seal/open of a 1 MiB write in a fresh interpreter, with a malloc control.

Not a pytest file: run it directly, once as is and once with glibc told to keep freed memory,
and compare:

    python benches/probe_alloc.py
    GLIBC_TUNABLES=glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=33554432 \
        python benches/probe_alloc.py

Why: a call that holds two ~1 MiB buffers at once (here: the Rust Vec the records are built in
and the bytes object they are copied into) can make glibc give the memory back to the kernel on
every call (the freed top of the heap exceeds the trim threshold, twice the dynamic mmap
threshold), so every call page-faults ~2 MiB in again. The first two lines are the pure-Python
control: one 1 MiB copy per call against two live at once.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ferrotls import _core  # noqa: E402

from bench_record import APPLICATION_DATA, SUITES, WRITE, ferro, keys_for  # noqa: E402

N = int(os.environ.get("FERROTLS_PROBE_CALLS", "200"))


def timed(f, n=N):
    for _ in range(5):
        f()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), min(ts)


def line(name, med_min):
    med, best = med_min
    print(f"{name:<32} median {med * 1e6:7.0f} us {WRITE / med / 1e6:6.0f} MB/s   best {WRITE / best / 1e6:6.0f} MB/s")


def main():
    data = os.urandom(WRITE)
    print("GLIBC_TUNABLES=" + os.environ.get("GLIBC_TUNABLES", "(unset)"))
    line("python: one 1 MiB copy", timed(lambda: data[1:]))
    line("python: two 1 MiB live at once", timed(lambda: bytes(bytearray(data))))
    for suite in SUITES:
        k = keys_for(suite)
        sealer = ferro(_core.RecordSealer, suite, k)
        records = ferro(_core.RecordSealer, suite, k).seal(APPLICATION_DATA, data)
        line(f"seal {suite.name}", timed(lambda: sealer.seal(APPLICATION_DATA, data)))
        line(f"open {suite.name}", timed(lambda: ferro(_core.RecordOpener, suite, k).open(records)))
        # One record per call: no megabyte buffers at all, 64 calls per MiB.
        chunks = [records[i : i + len(records) // 64] for i in range(0, len(records), len(records) // 64)]

        def open_each():
            opener = ferro(_core.RecordOpener, suite, k)
            for c in chunks:
                opener.open(c)

        def seal_each():
            for i in range(0, WRITE, 16384):
                sealer.seal(APPLICATION_DATA, data[i : i + 16384])

        line(f"seal {suite.name} 64 calls x 16K", timed(seal_each))
        if len(records) % 64 == 0:  # equal-size records only
            line(f"open {suite.name} 64 calls x 1", timed(open_each))


if __name__ == "__main__":
    main()
