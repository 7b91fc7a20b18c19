"""Coverage-guided fuzzing of the sans-I/O core with atheris (a long run; tests/test_fuzz.py is
the bounded, property-based one that CI runs).

    pip install atheris
    python fuzz/atheris_connection.py -max_total_time=3600 fuzz/corpus/connection

The input's first byte picks the role and the scenario, the second how the rest is cut into
receive_data calls. A server Connection gets the bytes as if from a client; a client
Connection, after its ClientHello, gets them as if from a server. Anything but progress or the
core's own failures (TLSAlert, PeerAlert) is a crash, which atheris saves as a reproducer; add
it to tests/test_fuzz.py as a regression test.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from ferrotls.protocol import TLS12_SUITES, Connection, PeerAlert, TLSAlert, TLSConfig
    from ferrotls.x509 import TrustStore
    from ferrotls.x509.keystore import Credential


def _credential():
    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    chain = [x509.load_pem_x509_certificate(pem.bytes()) for pem in leaf.cert_chain_pems]
    store = TrustStore()
    store.add_pem(ca.cert_pem.bytes().decode())
    return Credential(chain, key), store


CREDENTIAL, STORE = _credential()
SUITE_CHOICES = [list(TLS12_SUITES)] + [[suite] for suite in TLS12_SUITES]


def connection(selector: int) -> Connection:
    suites = SUITE_CHOICES[(selector >> 1) % len(SUITE_CHOICES)]
    if selector & 1:
        config = TLSConfig(cipher_suites=suites, credentials=[CREDENTIAL], verify_peer=bool(selector & 64),
                           trust_store=STORE)
        return Connection(config, False)
    client = Connection(TLSConfig(cipher_suites=suites, verify_peer=bool(selector & 64), trust_store=STORE), True,
                        server_hostname="localhost")
    client.start_handshake()
    client.data_to_send()
    return client


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    conn = connection(data[0])
    step = data[1] + 1
    rest = data[2:]
    try:
        for i in range(0, len(rest), step):
            conn.receive_data(rest[i : i + step])
            conn.data_to_send()
    except (TLSAlert, PeerAlert):
        conn.data_to_send()


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
