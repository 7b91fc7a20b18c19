"""Trust sources of TrustStore: key identifier index, the system's default verify paths (environment,
OpenSSL's built-in paths, distribution bundles), the per-process parse cache, hashed directories
and PKCS#12 truststores, checked against the openssl binary, keytool and the stdlib where they can be."""

from __future__ import annotations

import datetime
import os
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Callable, Optional

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ferrotls.x509 import store as store_module
from ferrotls.x509.keystore import PEM_LIB
from ferrotls.x509.store import TrustStore, default_verify_locations

DER = serialization.Encoding.DER
NOW = datetime.datetime.now(datetime.timezone.utc)
DEBIAN_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
System = Callable[..., None]


def cert_of(ca: trustme.CA) -> x509.Certificate:
    return x509.load_pem_x509_certificate(ca.cert_pem.bytes())


def der_of(ca: trustme.CA) -> bytes:
    return cert_of(ca).public_bytes(DER)


def ders(store: TrustStore) -> set[bytes]:
    return {c.public_bytes(DER) for c in store.certificates}


def write(path: Path, *cas: trustme.CA, extra: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(extra + b"".join(ca.cert_pem.bytes() for ca in cas))
    return path


def openssl(*args: str, env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=20, env=env)


def key_id(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def self_signed(name: str, key: ec.EllipticCurvePrivateKey, *, ski: bool = True) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(days=1)).not_valid_after(NOW + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    if ski:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    return builder.sign(key, hashes.SHA256())


@pytest.fixture(scope="module")
def cas() -> list[trustme.CA]:
    return [trustme.CA() for _ in range(5)]


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "_FILE_CACHE", {})


def record(monkeypatch: pytest.MonkeyPatch, name: str) -> list[object]:
    """The first argument of every call to the store module's function ``name``, from now on."""
    calls: list[object] = []
    real = getattr(store_module, name)

    def recording(first, *args):  # type: ignore[no-untyped-def]
        calls.append(first)
        return real(first, *args)

    monkeypatch.setattr(store_module, name, recording)
    return calls


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every PEM text the store parses."""
    return record(monkeypatch, "_parse_pem")


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> System:
    """A machine of our own: no SSL_CERT_* variables, OpenSSL's built-in paths under tmp_path
    (missing until a test creates them), no distribution bundles. Call it to change the last two."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    def configure(cafile: Path = tmp_path / "openssl" / "cert.pem", capath: Path = tmp_path / "openssl" / "certs",
                  distribution: tuple[str, ...] = ()) -> None:
        paths = ssl.DefaultVerifyPaths(None, None, "SSL_CERT_FILE", str(cafile), "SSL_CERT_DIR", str(capath))
        monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths)
        monkeypatch.setattr(store_module, "SYSTEM_CA_FILES", distribution)

    configure()
    return configure


# --- indexes --------------------------------------------------------------------------------


def test_by_key_id_and_by_subject(tmp_path: Path, cas: list[trustme.CA]) -> None:
    inter = cas[0].create_child_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    renewed = [self_signed("Renewed Root", key), self_signed("Renewed Root", key)]  # one key, two certificates
    no_ski = self_signed("Old Root", ec.generate_private_key(ec.SECP256R1()), ski=False)
    store = TrustStore()
    store.load_file(write(tmp_path / "a.pem", cas[0]))
    store.add_pem(inter.cert_pem.bytes())
    for cert in [*renewed, no_ski]:
        store.add_der(cert.public_bytes(DER))

    assert store.by_key_id(key_id(cert_of(cas[0]))) == [cert_of(cas[0])]
    # A leaf's AuthorityKeyIdentifier leads to its issuer, the intermediate.
    leaf = x509.load_pem_x509_certificate(inter.issue_cert("localhost").cert_chain_pems[0].bytes())
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki is not None and store.by_key_id(aki) == [cert_of(inter)]
    assert store.by_key_id(key_id(renewed[0])) == renewed
    assert store.by_subject(renewed[0].subject.public_bytes()) == renewed
    assert store.by_subject(no_ski.subject.public_bytes()) == [no_ski]  # indexed by subject only
    assert sum(len(store.by_key_id(k)) for k in store._by_key_id) == 4
    assert store.by_key_id(b"\x00" * 20) == [] and store.by_subject(b"\x30\x00") == []
    # Adding the same certificates again changes nothing.
    store.load_file(tmp_path / "a.pem")
    store.add(renewed[1])
    assert len(store) == 5 and store.by_key_id(key_id(renewed[0])) == renewed
    assert all(c in store for c in [*renewed, no_ski, cert_of(inter)]) and cert_of(cas[1]) not in store


# --- the system's default verify paths ------------------------------------------------------


def test_environment_variables_come_first(tmp_path: Path, cas: list[trustme.CA], system: System,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = write(tmp_path / "env" / "bundle.pem", cas[0])
    dir_a, dir_b = tmp_path / "env" / "a", tmp_path / "env" / "b"
    write(dir_a / "one.pem", cas[1])
    write(dir_b / "two.crt", cas[2])
    # OpenSSL's built-in paths exist too, but the variables replace them.
    system(cafile=write(tmp_path / "openssl" / "cert.pem", cas[3]),
           capath=write(tmp_path / "openssl" / "certs" / "x.pem", cas[4]).parent)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SSL_CERT_DIR", os.pathsep.join([str(dir_a), str(dir_b)]))

    assert default_verify_locations() == (str(bundle), [str(dir_a), str(dir_b)])
    store = TrustStore()
    store.load_default_verify_paths()
    assert ders(store) == {der_of(ca) for ca in cas[:3]}


def test_each_variable_replaces_only_its_own_path(tmp_path: Path, cas: list[trustme.CA], system: System,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """As in OpenSSL's X509_STORE_set_default_paths: SSL_CERT_FILE replaces the built-in file and
    leaves the built-in directory in use, and the other way round."""
    builtin_file = write(tmp_path / "openssl" / "cert.pem", cas[0])
    builtin_dir = write(tmp_path / "openssl" / "certs" / "x.pem", cas[1]).parent
    system(cafile=builtin_file, capath=builtin_dir)
    monkeypatch.setenv("SSL_CERT_FILE", str(write(tmp_path / "env.pem", cas[2])))
    store = TrustStore()
    store.load_default_verify_paths()
    assert ders(store) == {der_of(cas[1]), der_of(cas[2])}

    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_DIR", str(write(tmp_path / "envdir" / "y.pem", cas[3]).parent))
    assert default_verify_locations() == (str(builtin_file), [str(tmp_path / "envdir")])
    store = TrustStore()
    store.load_default_verify_paths()
    assert ders(store) == {der_of(cas[0]), der_of(cas[3])}


def test_openssl_builtin_paths_without_variables(tmp_path: Path, cas: list[trustme.CA], system: System) -> None:
    cafile = write(tmp_path / "openssl" / "cert.pem", cas[0], cas[1])
    capath = write(tmp_path / "openssl" / "certs" / "x.pem", cas[2]).parent
    system(cafile=cafile, capath=capath, distribution=(str(write(tmp_path / "distro.pem", cas[3])),))
    assert default_verify_locations() == (str(cafile), [str(capath)])
    store = TrustStore()
    store.load_default_verify_paths()
    assert ders(store) == {der_of(ca) for ca in cas[:3]}  # the distribution bundle is not needed


def test_distribution_bundles_when_openssl_has_none(tmp_path: Path, cas: list[trustme.CA], system: System) -> None:
    first, second = write(tmp_path / "fedora.crt", cas[0]), write(tmp_path / "alpine.pem", cas[1])
    system(distribution=(str(tmp_path / "debian.crt"), str(first), str(second)))  # the first is missing
    assert default_verify_locations() == (str(first), [])
    store = TrustStore()
    store.load_default_verify_paths()
    assert ders(store) == {der_of(cas[0])}

    system(distribution=(str(tmp_path / "debian.crt"),))
    assert default_verify_locations() == (None, [])
    store = TrustStore()
    store.load_default_verify_paths()  # nothing anywhere: an empty store, no error
    assert len(store) == 0


def test_variables_set_to_missing_paths_disable_the_fallback(tmp_path: Path, cas: list[trustme.CA],
                                                             system: System,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    system(distribution=(str(write(tmp_path / "distro.pem", cas[0])),))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", "")
    assert default_verify_locations() == (str(tmp_path / "missing.pem"), [])
    store = TrustStore()
    store.load_default_verify_paths()
    assert len(store) == 0


def test_malformed_system_entries_are_skipped(tmp_path: Path, cas: list[trustme.CA], system: System,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    bundle = write(tmp_path / "bundle.pem", cas[0], extra=broken)
    certs = tmp_path / "certs"
    write(certs / "good.pem", cas[1])
    write(certs / "broken.pem", extra=broken)
    write(certs / "junk.crt", extra=b"no certificate here")
    (certs / "dir.pem").mkdir()
    (certs / "deadbeef.0").symlink_to(tmp_path / "nowhere.pem")  # dangling hash link
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SSL_CERT_DIR", os.pathsep.join([str(certs), str(tmp_path / "missing")]))
    store = TrustStore()
    store.load_default_verify_paths()
    assert ders(store) == {der_of(cas[0]), der_of(cas[1])}
    # The same bundle given as a cafile is refused, the stdlib's way.
    with pytest.raises(ssl.SSLError, match="malformed certificate"):
        TrustStore().load_file(bundle)


def test_openssl_searches_the_same_directories(tmp_path: Path, cas: list[trustme.CA], system: System,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """openssl reads SSL_CERT_DIR as a list and finds an issuer in its second directory by its
    rehash name; the store loads the same directories and holds that issuer."""
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    write(dir_a / "ca0.pem", cas[0])
    write(dir_b / "ca1.pem", cas[1])
    for d in (dir_a, dir_b):
        assert openssl("rehash", str(d)).returncode == 0
    leaf = tmp_path / "leaf.pem"
    cas[1].issue_cert("localhost").cert_chain_pems[0].write_to_path(str(leaf))
    env = {**os.environ, "SSL_CERT_FILE": str(tmp_path / "none.pem"), "SSL_CERT_DIR": f"{dir_a}:{dir_b}"}
    done = openssl("verify", str(leaf), env=env)
    assert done.returncode == 0 and ": OK" in done.stdout, done.stdout + done.stderr

    monkeypatch.setenv("SSL_CERT_FILE", env["SSL_CERT_FILE"])
    monkeypatch.setenv("SSL_CERT_DIR", env["SSL_CERT_DIR"])
    store = TrustStore()
    store.load_default_verify_paths()
    assert ders(store) == {der_of(cas[0]), der_of(cas[1])}
    issuer = x509.load_pem_x509_certificate(leaf.read_bytes()).issuer.public_bytes()
    assert store.by_subject(issuer) == [cert_of(cas[1])]


@pytest.mark.skipif(not os.path.isfile(DEBIAN_BUNDLE), reason="no Debian-style system bundle")
@pytest.mark.filterwarnings("error")
def test_real_system_bundle_matches_the_stdlib() -> None:
    store = TrustStore()
    store.load_file(DEBIAN_BUNDLE)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=DEBIAN_BUNDLE)
    assert len(store) > 50 and ders(store) == set(context.get_ca_certs(binary_form=True))
    # Everything the stdlib's defaults hold in memory, ours hold too.
    everything = TrustStore()
    everything.load_default_verify_paths()
    assert set(ssl.create_default_context().get_ca_certs(binary_form=True)) <= ders(everything)


@pytest.mark.skipif(not os.path.isfile(DEBIAN_BUNDLE), reason="no Debian-style system bundle")
@pytest.mark.filterwarnings("error")  # roots with negative serial numbers load without a warning
def test_real_system_bundle_as_pkcs12(tmp_path: Path) -> None:
    out = tmp_path / "system.p12"
    done = openssl("pkcs12", "-export", "-nokeys", "-in", DEBIAN_BUNDLE, "-out", str(out), "-passout", "pass:changeit")
    assert done.returncode == 0, done.stderr
    from_pem, from_pkcs12 = TrustStore(), TrustStore()
    from_pem.load_file(DEBIAN_BUNDLE)
    from_pkcs12.load_pkcs12(out, "changeit")
    assert len(from_pem) > 50 and ders(from_pkcs12) == ders(from_pem)


# --- the parse cache ------------------------------------------------------------------------


def test_a_file_is_parsed_once(tmp_path: Path, cas: list[trustme.CA], parses: list[object]) -> None:
    bundle = write(tmp_path / "bundle.pem", cas[0], cas[1])
    first, second = TrustStore(), TrustStore()
    first.load_file(bundle)
    second.load_file(str(bundle))
    assert len(parses) == 1 and len(first) == len(second) == 2
    assert all(a is b for a, b in zip(first.certificates, second.certificates))  # shared, not made again
    link = tmp_path / "link.pem"
    link.symlink_to(bundle)
    TrustStore().load_file(link)  # another name for the same file
    assert len(parses) == 1 and len(store_module._FILE_CACHE) == 1


def test_a_changed_file_is_parsed_again(tmp_path: Path, cas: list[trustme.CA], parses: list[object]) -> None:
    bundle = write(tmp_path / "bundle.pem", cas[0])
    TrustStore().load_file(bundle)
    stat = bundle.stat()

    write(bundle, cas[0], cas[1])  # grown
    store = TrustStore()
    store.load_file(bundle)
    assert len(parses) == 2 and ders(store) == {der_of(cas[0]), der_of(cas[1])}

    os.utime(bundle, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched
    TrustStore().load_file(bundle)
    assert len(parses) == 3

    # Replaced by rename (as package managers do) with a file of the same size and times.
    replacement = write(tmp_path / "new.pem", cas[1], cas[0])
    assert replacement.stat().st_size == bundle.stat().st_size
    os.utime(replacement, ns=(bundle.stat().st_atime_ns, bundle.stat().st_mtime_ns))
    os.replace(replacement, bundle)
    store = TrustStore()
    store.load_file(bundle)
    assert len(parses) == 4 and store.certificates == [cert_of(cas[1]), cert_of(cas[0])]
    assert len(store_module._FILE_CACHE) == 2  # the replaced file's entry stays until evicted


def test_the_cache_remembers_malformed_blocks(tmp_path: Path, cas: list[trustme.CA], parses: list[object]) -> None:
    bundle = write(tmp_path / "bundle.pem", cas[0], extra=b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    for _ in range(2):
        store = TrustStore()
        with pytest.raises(ssl.SSLError, match="malformed certificate"):
            store.load_file(bundle)
        assert len(store) == 0  # strict: all or nothing, as OpenSSL reads a cafile
        store.load_file(bundle, strict=False)
        assert ders(store) == {der_of(cas[0])}
    assert len(parses) == 1


def test_the_cache_is_bounded(tmp_path: Path, cas: list[trustme.CA], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "_FILE_CACHE_LIMIT", 3)
    files = [write(tmp_path / f"{i}.pem", ca) for i, ca in enumerate(cas)]
    for path in files:
        TrustStore().load_file(path)
    kept = {(s.st_dev, s.st_ino) for s in (p.stat() for p in files[-3:])}
    assert set(store_module._FILE_CACHE) == kept


def test_system_paths_are_parsed_once(tmp_path: Path, cas: list[trustme.CA], system: System, parses: list[object],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The Debian layout: the bundle sits in the hashed directory it duplicates."""
    certs = tmp_path / "certs"
    for i, ca in enumerate(cas[:3]):
        write(certs / f"ca{i}.pem", ca)
    write(certs / "ca-certificates.crt", *cas[:3])
    assert openssl("rehash", str(certs)).returncode == 0
    monkeypatch.setenv("SSL_CERT_FILE", str(certs / "ca-certificates.crt"))
    monkeypatch.setenv("SSL_CERT_DIR", str(certs))
    decoded: list[bytes] = []
    real = x509.load_pem_x509_certificate
    monkeypatch.setattr(x509, "load_pem_x509_certificate", lambda data: decoded.append(data) or real(data))
    first = TrustStore()
    first.load_default_verify_paths()
    assert len(parses) == 4  # the bundle and three files; neither the hash links nor the bundle again
    assert len(decoded) == 3  # the files repeat the bundle's certificates: those are not decoded again
    second = TrustStore()
    second.load_default_verify_paths()
    assert len(parses) == 4 and first.certificates == second.certificates and len(first) == 3
    assert all(a is b for a, b in zip(first.certificates, second.certificates))
    assert [len(second.by_key_id(key_id(cert_of(ca)))) for ca in cas[:3]] == [1, 1, 1]


# --- directories ----------------------------------------------------------------------------


def test_hashed_directory_is_deduplicated(tmp_path: Path, cas: list[trustme.CA], parses: list[object],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    certs = tmp_path / "certs"
    write(certs / "a.pem", cas[0])
    write(certs / "b.crt", cas[1])
    assert openssl("rehash", str(certs)).returncode == 0
    hashed = sorted(p.name for p in certs.iterdir() if p.is_symlink())
    assert len(hashed) == 2 and all(name.endswith(".0") for name in hashed)
    shutil.copy(certs / "a.pem", certs / "0badf00d.0")  # a copy, as `c_rehash -copy` makes
    os.link(certs / "b.crt", certs / "hardlink.pem")
    reads = record(monkeypatch, "_read_pem_file")
    store = TrustStore()
    store.load_directory(certs)
    assert ders(store) == {der_of(cas[0]), der_of(cas[1])} and len(store) == 2
    # a.pem, b.crt and the copy; the symlinks and the hard link are files already read.
    assert len(reads) == len(parses) == 3


def test_directory_of_hash_links_only(tmp_path: Path, cas: list[trustme.CA]) -> None:
    """Like /etc/ssl/certs: hash names linking to files elsewhere, which the store follows."""
    certs = tmp_path / "certs"
    certs.mkdir()
    for i, ca in enumerate(cas[:2]):
        target = write(tmp_path / "share" / f"ca{i}.crt", ca)
        subject_hash = openssl("x509", "-hash", "-noout", "-in", str(target)).stdout.strip()
        (certs / f"{subject_hash}.0").symlink_to(target)
    store = TrustStore()
    store.load_directory(certs)
    assert ders(store) == {der_of(cas[0]), der_of(cas[1])}


# --- PKCS#12 --------------------------------------------------------------------------------


def pem_bundle(tmp_path: Path, *cas: trustme.CA) -> str:
    return str(write(tmp_path / "in.pem", *cas))


def test_pkcs12_truststore_from_openssl(tmp_path: Path, cas: list[trustme.CA]) -> None:
    out = tmp_path / "trust.p12"
    done = openssl("pkcs12", "-export", "-nokeys", "-in", pem_bundle(tmp_path, *cas[:3]),
                   "-out", str(out), "-passout", "pass:changeit")
    assert done.returncode == 0, done.stderr
    for source, password in [(out, "changeit"), (str(out), b"changeit"), (out.read_bytes(), lambda: "changeit"),
                             (bytearray(out.read_bytes()), bytearray(b"changeit"))]:
        store = TrustStore()
        store.load_pkcs12(source, password)
        assert ders(store) == {der_of(ca) for ca in cas[:3]}
        assert store.by_key_id(key_id(cert_of(cas[2]))) == [cert_of(cas[2])]


@pytest.mark.parametrize("options, password", [
    (["-legacy", "-passout", "pass:changeit"], "changeit"),  # RC2-40 certificates, SHA-1 MAC
    (["-passout", "pass:"], None),  # an empty password
    (["-nomac", "-certpbe", "NONE", "-passout", "pass:"], None),  # not protected at all
])
def test_pkcs12_truststore_variants(tmp_path: Path, cas: list[trustme.CA], options: list[str],
                                    password: Optional[str]) -> None:
    out = tmp_path / "trust.p12"
    done = openssl("pkcs12", "-export", "-nokeys", "-in", pem_bundle(tmp_path, *cas[:2]), "-out", str(out), *options)
    assert done.returncode == 0, done.stderr
    store = TrustStore()
    store.load_pkcs12(out, password)
    assert ders(store) == {der_of(cas[0]), der_of(cas[1])}


def test_pkcs12_java_truststore_from_cryptography(cas: list[trustme.CA]) -> None:
    certs = [pkcs12.PKCS12Certificate(cert_of(ca), f"ca{i}".encode()) for i, ca in enumerate(cas[:2])]
    data = pkcs12.serialize_java_truststore(certs, serialization.BestAvailableEncryption(b"changeit"))
    store = TrustStore()
    store.load_pkcs12(data, "changeit")
    assert store.certificates == [cert_of(cas[0]), cert_of(cas[1])]


@pytest.mark.skipif(shutil.which("keytool") is None, reason="no keytool")
def test_pkcs12_truststore_from_keytool(tmp_path: Path, cas: list[trustme.CA]) -> None:
    out = tmp_path / "cacerts.p12"
    for i, ca in enumerate(cas[:2]):
        done = subprocess.run(["keytool", "-importcert", "-noprompt", "-storetype", "PKCS12", "-keystore", str(out),
                               "-storepass", "changeit", "-alias", f"ca{i}", "-file", pem_bundle(tmp_path, ca)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    store = TrustStore()
    store.load_pkcs12(out, "changeit")
    assert ders(store) == {der_of(cas[0]), der_of(cas[1])}


def test_pkcs12_with_a_key_adds_only_certificates(tmp_path: Path, cas: list[trustme.CA]) -> None:
    inter = cas[0].create_child_ca()
    leaf = inter.issue_cert("localhost")
    leaf.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "leaf.pem"))
    out = tmp_path / "key.p12"
    done = openssl("pkcs12", "-export", "-in", str(tmp_path / "leaf.pem"), "-certfile", pem_bundle(tmp_path, cas[0]),
                   "-out", str(out), "-passout", "pass:pw")
    assert done.returncode == 0, done.stderr
    store = TrustStore()
    store.load_pkcs12(out, "pw")
    expected = [x509.load_pem_x509_certificate(b.bytes()) for b in leaf.cert_chain_pems] + [cert_of(cas[0])]
    assert ders(store) == {c.public_bytes(DER) for c in expected} and len(store) == 3


def test_pkcs12_errors(tmp_path: Path, cas: list[trustme.CA]) -> None:
    certs = [pkcs12.PKCS12Certificate(cert_of(cas[0]), b"ca")]
    data = pkcs12.serialize_java_truststore(certs, serialization.BestAvailableEncryption(b"changeit"))
    for source, password in [(data, "wrong"), (data, None), (b"garbage", None), (data[:len(data) // 2], "changeit")]:
        with pytest.raises(ssl.SSLError, match="wrong password or corrupt data") as excinfo:
            TrustStore().load_pkcs12(source, password)
        assert excinfo.value.args[0] == PEM_LIB and excinfo.value.library == "X509"  # type: ignore[attr-defined]
    key = ec.generate_private_key(ec.SECP256R1())
    key_only = pkcs12.serialize_key_and_certificates(b"k", key, None, None, serialization.NoEncryption())
    with pytest.raises(ssl.SSLError, match="no certificate or crl found") as excinfo:
        TrustStore().load_pkcs12(key_only)
    assert excinfo.value.args[0] == 136
    with pytest.raises(TypeError, match="password should be a string or callable"):
        TrustStore().load_pkcs12(data, 1234)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        TrustStore().load_pkcs12(tmp_path / "missing.p12", "changeit")
