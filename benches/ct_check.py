"""Constant-time check of the two secret-dependent operations a peer can time (issue 12).

    python benches/ct_check.py [--samples N]

- RSA premaster decryption (implicit rejection, rust/src/rsa_kx.rs): ciphertexts of a valid
  PKCS#1 v1.5 premaster block, of a block with bad padding, and of a good block with the wrong
  client_version, decrypted by the same key in random interleaving.
- The CBC MAC-then-encrypt check (Lucky13, rust/src/cbc.rs): records of the same length whose
  padding is 0 or 255 bytes long, with a good MAC, a bad MAC, or bad padding, opened in random
  interleaving.

Each call is timed alone (perf_counter_ns); the classes are compared pairwise, as dudect does,
with Welch's t statistic on the samples cropped to the 5th-95th percentile (|t| > 4.5 is
evidence of a timing difference) and the two-sample Kolmogorov-Smirnov statistic D with its
approximate p-value. A check script, not a timed test: it prints and asserts nothing. The
machine's noise (other processes, frequency changes) only ever adds to the statistics.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import math
import os
import random
import statistics
import struct
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ferrotls import _core


def welch_t(a: list, b: list) -> float:
    a, b = _cropped(a), _cropped(b)
    va, vb = statistics.variance(a), statistics.variance(b)
    return (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(va / len(a) + vb / len(b))


def _cropped(samples: list) -> list:
    ordered = sorted(samples)
    n = len(ordered)
    return ordered[n // 20 : n - n // 20]


def ks(a: list, b: list) -> tuple[float, float]:
    """(D, approximate p-value) of the two-sample Kolmogorov-Smirnov test."""
    a, b = sorted(a), sorted(b)
    i = j = 0
    d = 0.0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            i += 1
        else:
            j += 1
        d = max(d, abs(i / len(a) - j / len(b)))
    n = len(a) * len(b) / (len(a) + len(b))
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * (k * lam) ** 2) for k in range(1, 101))
    return d, min(max(p, 0.0), 1.0)


def timed_classes(make_call, classes: list, samples: int) -> dict:
    """Times make_call(cls)() for each class, `samples` times each, in random order."""
    order = [c for c in classes for _ in range(samples)]
    random.shuffle(order)
    times = {c: [] for c in classes}
    for c in order:
        call = make_call(c)
        start = time.perf_counter_ns()
        call()
        times[c].append(time.perf_counter_ns() - start)
    return times


def report(title: str, times: dict, pairs: list) -> None:
    print(f"\n{title}")
    for c, t in times.items():
        print(f"  {c:<28} median {statistics.median(t) / 1000:9.2f} us  n={len(t)}")
    for a, b in pairs:
        t = welch_t(times[a], times[b])
        d, p = ks(times[a], times[b])
        verdict = "difference" if abs(t) > 4.5 else "no evidence of a difference"
        print(f"  {a} vs {b}: Welch t = {t:+.2f}, KS D = {d:.4f} (p = {p:.3f}): {verdict}")


def rsa_check(samples: int) -> None:
    key = rsa.generate_private_key(65537, 2048)
    core = _core.PrivateKey(key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    numbers = key.public_key().public_numbers()
    k = 256

    def raw_encrypt(block: bytes) -> bytes:
        return pow(int.from_bytes(block, "big"), numbers.e, numbers.n).to_bytes(k, "big")

    def valid() -> bytes:
        return key.public_key().encrypt(b"\x03\x03" + os.urandom(46), padding.PKCS1v15())

    def bad_padding() -> bytes:
        return raw_encrypt(b"\x00\x01" + os.urandom(k - 2))  # block type 1, not 2

    def wrong_version() -> bytes:
        return key.public_key().encrypt(b"\x03\x01" + os.urandom(46), padding.PKCS1v15())

    pools = {name: [make() for _ in range(64)] for name, make in
             (("valid", valid), ("bad padding", bad_padding), ("wrong client_version", wrong_version))}
    times = timed_classes(lambda c: (lambda ct=random.choice(pools[c]): core.rsa_premaster(ct, 0x0303)),
                          list(pools), samples)
    report(f"RSA-2048 premaster decryption, {samples} samples a class", times,
           [("valid", "bad padding"), ("valid", "wrong client_version"), ("bad padding", "wrong client_version")])


def cbc_check(samples: int) -> None:
    enc_key, mac_key = os.urandom(16), os.urandom(32)
    data_len = 1024 - 32 - 256  # the same record length for every padding length below

    def record(pad: int, good_mac: bool = True, good_padding: bool = True) -> bytes:
        data = os.urandom(data_len + 255 - pad)
        header = struct.pack("!QBHH", 0, 23, 0x0303, len(data))
        mac = hmac.new(mac_key, header + data, hashlib.sha256).digest()
        if not good_mac:
            mac = bytes([mac[0] ^ 1]) + mac[1:]
        pad_bytes = bytes([pad]) * (pad + 1)
        if not good_padding:
            pad_bytes = bytes([pad ^ 1]) + pad_bytes[1:]
        iv = os.urandom(16)
        encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
        body = iv + encryptor.update(data + mac + pad_bytes) + encryptor.finalize()
        return struct.pack("!BHH", 23, 0x0303, len(body)) + body

    kinds = {
        "pad 0, good MAC": dict(pad=0), "pad 255, good MAC": dict(pad=255),
        "pad 0, bad MAC": dict(pad=0, good_mac=False), "pad 255, bad MAC": dict(pad=255, good_mac=False),
        "pad 255, bad padding": dict(pad=255, good_padding=False),
    }
    pools = {name: [record(**kw) for _ in range(64)] for name, kw in kinds.items()}
    assert len({len(r) for pool in pools.values() for r in pool}) == 1

    shared = bytearray(len(pools["pad 0, good MAC"][0]))  # every class opens in the same memory

    def make_call(c):
        opener = _core.RecordOpener("AES_128_CBC_SHA256", enc_key, b"", mac_key)
        shared[:] = random.choice(pools[c])
        buf = shared

        def call():
            try:
                opener.open_in_place(buf, 0, len(buf), 1 << 20)
            except _core.RecordError:
                pass
        return call

    times = timed_classes(make_call, list(kinds), samples)
    report(f"AES-128-CBC + HMAC-SHA256 MAC-then-encrypt, {len(pools['pad 0, good MAC'][0])}-byte records, "
           f"{samples} samples a class", times,
           # Success and failure differ visibly anyway (data or an alert); what must not leak
           # is the padding length, and which check failed.
           [("pad 0, good MAC", "pad 255, good MAC"), ("pad 0, bad MAC", "pad 255, bad MAC"),
            ("pad 255, bad MAC", "pad 255, bad padding"), ("pad 0, bad MAC", "pad 255, bad padding")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    args = parser.parse_args()
    rsa_check(args.samples)
    cbc_check(args.samples * 5)


if __name__ == "__main__":
    main()
