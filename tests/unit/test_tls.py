"""TLS to the trackers: verification on by default, a private CA bundle per tracker, loud when turned off.

The sandbox trackers are served over HTTPS with a self-signed certificate made for the test (by
`openssl`, or by the `cryptography` package when the command is absent): each connector refuses them
without `ca_bundle`, with a message naming the tracker and TLS, and talks to them with it.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bridge.config import BridgeConfig, config_warnings, parse_config
from bridge.connector import ConnectorRegistry
from bridge.errors import ConfigError, FatalAPIError, RetriableAPIError
from bridge.http import RetryPolicy, tls_failure, tls_verify
from bridge.store import Store
from bridge.store.models import MilestoneRow
from bridge_asana.client import make_api_client
from bridge_asana.config import AsanaTrackerConfig
from bridge_asana.session import AsanaSession
from bridge_jira.client import JiraSession
from bridge_jira.config import JiraTrackerConfig
from bridge_sandbox.asana import AsanaEmulator
from bridge_sandbox.generate import build
from bridge_sandbox.generate_asana import render_asana
from bridge_sandbox.generate_jira import render_jira
from bridge_sandbox.generate_trello import render_trello
from bridge_sandbox.jira import JiraEmulator
from bridge_sandbox.server import Emulator, SandboxServer
from bridge_sandbox.trello import TrelloEmulator
from bridge_trello.config import TrelloTrackerConfig
from bridge_trello.session import TrelloSession
from tests.contract.test_jira_pull import EMAIL, TOKEN, jira_table
from tests.contract.test_trello_pull import trello_table

NOW = datetime(2026, 6, 1, tzinfo=UTC)
STATUS_MAP = '[trackers.t.status_map]\n"Done" = "done"\n'


# ---- certificates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    cert: Path
    """A self-signed certificate for 127.0.0.1 and localhost, which is also its own CA."""
    key: Path
    other_ca: Path
    """Another self-signed certificate, which did not sign `cert`."""


def _with_openssl(openssl: str, folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN=bridge test {name}",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _with_cryptography(folder: Path, name: str) -> tuple[Path, Path]:
    import ipaddress
    from datetime import timedelta

    from cryptography import x509  # type: ignore[import-not-found, unused-ignore]
    from cryptography.hazmat.primitives import hashes, serialization  # type: ignore[import-not-found, unused-ignore]
    from cryptography.hazmat.primitives.asymmetric import ec  # type: ignore[import-not-found, unused-ignore]
    from cryptography.x509.oid import NameOID  # type: ignore[import-not-found, unused-ignore]

    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bridge test {name}")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(private, hashes.SHA256())
    )
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


def make_certs(folder: Path) -> Certs:
    """Two self-signed certificates, by `openssl` or else `cryptography`; skips the test if neither."""
    openssl = shutil.which("openssl")
    if openssl is not None:
        cert, key = _with_openssl(openssl, folder, "server")
        other, _ = _with_openssl(openssl, folder, "other")
        return Certs(cert, key, other)
    try:
        import cryptography  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        pytest.skip("cannot make a test certificate: no openssl command and no cryptography package")
    cert, key = _with_cryptography(folder, "server")
    other, _ = _with_cryptography(folder, "other")
    return Certs(cert, key, other)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def certs_folder(certs: Certs) -> Path:
    return certs.cert.parent


def serve_https(emulator: Emulator, certs: Certs) -> tuple[SandboxServer, str]:
    """A sandbox whose listening socket speaks TLS with the test certificate; its https base URL."""
    server = SandboxServer(emulator)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.cert, certs.key)
    inner = server._server
    inner.socket = context.wrap_socket(inner.socket, server_side=True)
    server.start()
    return server, f"https://127.0.0.1:{server.port}"


@pytest.fixture
def quiet_policy() -> RetryPolicy:
    return RetryPolicy(attempts=2, sleep=lambda seconds: None)


def _organisation() -> Any:
    return build(seed=21, per_tracker=2, now=NOW)


def _config(text: str, folder: Path) -> BridgeConfig:
    return parse_config(text, ConnectorRegistry.default(), source="bridge.toml", path=folder / "bridge.toml")


# ---- configuration --------------------------------------------------------------------------------


def _tracker(extra: str) -> str:
    head = '[trackers.t]\nkind = "jira"\nurl = "https://jira.example.com"\ntoken_env = "T"\n'
    return f"{head}{extra}\n{STATUS_MAP}"


def test_verification_is_on_by_default_with_the_system_roots(tmp_path: Path) -> None:
    tracker = _config(_tracker('projects = ["P"]'), tmp_path).trackers["t"]
    assert tracker.verify_tls is True
    assert tracker.ca_bundle is None
    assert tls_verify("t", tracker.verify_tls, tracker.ca_bundle) is True


def test_a_relative_ca_bundle_is_read_from_the_config_folder(tmp_path: Path, certs: Certs) -> None:
    (tmp_path / "certs").mkdir()
    shutil.copy(certs.cert, tmp_path / "certs" / "ca.pem")
    tracker = _config(_tracker('projects = ["P"]\nca_bundle = "certs/ca.pem"'), tmp_path).trackers["t"]
    assert tracker.ca_bundle == str((tmp_path / "certs" / "ca.pem").resolve())
    assert tls_verify("t", tracker.verify_tls, tracker.ca_bundle) == tracker.ca_bundle


@pytest.mark.parametrize(
    ("setup", "value", "words"),
    [
        ("missing", "nope/ca.pem", "does not exist"),
        ("folder", "certs", "is not a file"),
        ("not-pem", "ca.txt", "holds no PEM certificate"),
        ("empty", "", "is empty"),
    ],
)
def test_a_bad_ca_bundle_is_reported_by_its_path(tmp_path: Path, setup: str, value: str, words: str) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "ca.txt").write_text("not a certificate\n")
    with pytest.raises(ConfigError) as caught:
        _config(_tracker(f'projects = ["P"]\nca_bundle = "{value}"'), tmp_path)
    problems = [p for p in caught.value.problems if p.path == "trackers.t.ca_bundle"]
    assert problems, caught.value.render()
    assert words in problems[0].message, caught.value.render()


@pytest.mark.skipif(
    not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
    reason="root reads any file, so an unreadable one cannot be made",
)
def test_an_unreadable_ca_bundle_is_reported(tmp_path: Path, certs: Certs) -> None:
    bundle = tmp_path / "ca.pem"
    shutil.copy(certs.cert, bundle)
    bundle.chmod(0)
    with pytest.raises(ConfigError) as caught:
        _config(_tracker(f'projects = ["P"]\nca_bundle = "{bundle}"'), tmp_path)
    assert any(
        p.path == "trackers.t.ca_bundle" and "cannot be read" in p.message for p in caught.value.problems
    )


def test_verification_off_is_a_loud_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = _config(_tracker('projects = ["P"]\nverify_tls = false'), tmp_path)
    warnings = config_warnings(cfg)
    assert any("trackers.t.verify_tls is false" in w and "NOT checked" in w for w in warnings)
    with caplog.at_level(logging.WARNING, logger="bridge.http"):
        assert tls_verify("t", False, None) is False
    assert "t: TLS certificate verification is OFF" in caplog.text


def test_verification_off_with_a_ca_bundle_is_an_error(tmp_path: Path, certs: Certs) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(_tracker(f'projects = ["P"]\nverify_tls = false\nca_bundle = "{certs.cert}"'), tmp_path)
    assert any("ignored when verify_tls is false" in p.message for p in caught.value.problems)


def test_a_certificate_failure_is_fatal_and_says_what_to_do() -> None:
    detail = (
        "HTTPSConnectionPool(host='jira.acme.test', port=443): Max retries exceeded (Caused by "
        "SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
        "failed: self-signed certificate (_ssl.c:1006)')))"
    )
    error = tls_failure("acme", "https://jira.acme.test/rest/api/2/serverInfo?x=1", detail, None)
    assert isinstance(error, FatalAPIError)
    assert str(error) == (
        "acme: TLS certificate verification failed for https://jira.acme.test: certificate verify "
        "failed: self-signed certificate; if jira.acme.test uses a private certificate authority, "
        "set trackers.acme.ca_bundle to its PEM file"
    )
    dropped = tls_failure("acme", "https://jira.acme.test", "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF", None)
    assert isinstance(dropped, RetriableAPIError)
    assert "TLS handshake" in str(dropped)


# ---- each SDK gets the setting --------------------------------------------------------------------


def test_asana_client_takes_the_bundle_or_no_verification(certs: Certs) -> None:
    with_bundle = make_api_client("https://app.asana.com", "tok", 5.0, str(certs.cert))
    assert with_bundle.configuration.verify_ssl is True
    assert with_bundle.configuration.ssl_ca_cert == str(certs.cert)
    assert with_bundle.rest_client.pool_manager.connection_pool_kw["ca_certs"] == str(certs.cert)
    assert with_bundle.rest_client.pool_manager.connection_pool_kw["cert_reqs"] == ssl.CERT_REQUIRED
    default = make_api_client("https://app.asana.com", "tok", 5.0)
    assert default.configuration.verify_ssl is True
    assert default.configuration.ssl_ca_cert is None
    off = make_api_client("https://app.asana.com", "tok", 5.0, False)
    assert off.rest_client.pool_manager.connection_pool_kw["cert_reqs"] == ssl.CERT_NONE


def test_trello_session_hands_the_bundle_to_requests(tmp_path: Path, certs: Certs) -> None:
    cfg = _config(
        '[trackers.t]\nkind = "trello"\nurl = "https://trello.example.com"\napi_key_env = "K"\n'
        f'token_env = "T"\nboards = ["b"]\nca_bundle = "{certs.cert}"\n{STATUS_MAP}',
        tmp_path,
    )
    tracker = cfg.trackers["t"]
    assert isinstance(tracker, TrelloTrackerConfig)
    session = TrelloSession("t", tracker, {"api_key_env": "key1", "token_env": "token1"})
    try:
        assert session.http.verify == str(certs.cert)
        assert session.client.http_service is session.http
    finally:
        session.close()


# ---- against sandboxes served over HTTPS ----------------------------------------------------------


@pytest.fixture
def jira_https(certs: Certs) -> Iterator[str]:
    server, url = serve_https(JiraEmulator.from_search(render_jira(_organisation()), flavour="cloud"), certs)
    yield url
    server.stop()


@pytest.fixture
def trello_https(certs: Certs) -> Iterator[tuple[str, list[str]]]:
    seed = render_trello(_organisation())
    server, url = serve_https(TrelloEmulator.from_export(seed), certs)
    yield url, [b["id"] for b in seed["boards"]]
    server.stop()


@pytest.fixture
def asana_https(certs: Certs) -> Iterator[tuple[str, AsanaEmulator]]:
    emulator = AsanaEmulator.from_seed(render_asana(_organisation()))
    server, url = serve_https(emulator, certs)
    yield url, emulator
    server.stop()


def _jira_config(url: str, folder: Path, bundle: Path | None) -> BridgeConfig:
    folder.mkdir(exist_ok=True)
    text = f'[store]\nurl = "sqlite:///{folder / "store.db"}"\n' + jira_table(url)
    if bundle is not None:
        text = text.replace('lag = "1m"\n', f'lag = "1m"\nca_bundle = "{bundle}"\n')
    path = folder / "bridge.toml"
    path.write_text(text)
    path.chmod(0o600)
    return parse_config(text, ConnectorRegistry.default(), source=str(path), path=path)


def test_jira_refuses_an_unknown_certificate_naming_the_tracker(
    jira_https: str, tmp_path: Path, quiet_policy: RetryPolicy
) -> None:
    tracker = _jira_config(jira_https, tmp_path, None).trackers["t"]
    assert isinstance(tracker, JiraTrackerConfig)
    with pytest.raises(FatalAPIError) as caught:
        JiraSession("t", tracker, {"token_env": "tok", "email_env": "me@x.test"}, policy=quiet_policy)
    message = str(caught.value)
    assert message.startswith(f"t: TLS certificate verification failed for {jira_https}: ")
    assert "self-signed certificate" in message
    assert "set trackers.t.ca_bundle to its PEM file" in message


def test_jira_with_another_ca_bundle_is_refused_too(
    jira_https: str, tmp_path: Path, certs: Certs, quiet_policy: RetryPolicy
) -> None:
    tracker = _jira_config(jira_https, tmp_path, certs.other_ca).trackers["t"]
    assert isinstance(tracker, JiraTrackerConfig)
    with pytest.raises(FatalAPIError) as caught:
        JiraSession("t", tracker, {"token_env": "tok", "email_env": "me@x.test"}, policy=quiet_policy)
    assert f"not signed by an authority in ca_bundle {certs.other_ca}" in str(caught.value)


def test_bridge_pull_over_https_with_the_ca_bundle(
    jira_https: str,
    tmp_path: Path,
    certs: Certs,
    run_cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("T_EMAIL", EMAIL)
    monkeypatch.setenv("T_TOKEN", TOKEN)
    refused = _jira_config(jira_https, tmp_path / "refused", None)
    assert refused.path is not None
    without = run_cli("pull", "--config", str(refused.path))
    assert without.exit_code == 1, without
    assert "t: TLS certificate verification failed" in without.stdout + without.stderr

    trusted = _jira_config(jira_https, tmp_path / "trusted", certs.cert)
    assert trusted.path is not None
    result = run_cli("pull", "--config", str(trusted.path))
    assert result.exit_code == 0, result
    assert ": ok" in result.stdout
    store = Store.open(trusted)
    try:
        with store.read() as conn:
            table = MilestoneRow.__table__  # type: ignore[attr-defined]
            milestones = conn.scalar(select(func.count()).select_from(table))
    finally:
        store.close()
    assert milestones and milestones > 0


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_trello_over_https(
    trello_https: tuple[str, list[str]],
    certs: Certs,
    quiet_policy: RetryPolicy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # requests would let this variable override a session's `verify`; the tracker's setting must win.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs.other_ca))
    url, boards = trello_https
    table = trello_table(url, boards)
    secrets = {"api_key_env": "sandbox-key", "token_env": "sandbox-token"}

    refused = parse_config(table, ConnectorRegistry.default()).trackers["t"]
    assert isinstance(refused, TrelloTrackerConfig)
    session = TrelloSession("t", refused, secrets, policy=quiet_policy)
    with pytest.raises(FatalAPIError) as caught:
        session.get(f"boards/{boards[0]}")
    session.close()
    assert str(caught.value).startswith(f"t: TLS certificate verification failed for {url}: ")
    assert "sandbox-key" not in str(caught.value) and "sandbox-token" not in str(caught.value)

    trusted = parse_config(
        table.replace("boards = [", f'ca_bundle = "{certs.cert}"\nboards = ['), ConnectorRegistry.default()
    ).trackers["t"]
    assert isinstance(trusted, TrelloTrackerConfig)
    session = TrelloSession("t", trusted, secrets, policy=quiet_policy)
    try:
        board = session.get(f"boards/{boards[0]}")
    finally:
        session.close()
    assert board["id"] == boards[0]

    unchecked = parse_config(
        table.replace("boards = [", "verify_tls = false\nboards = ["), ConnectorRegistry.default()
    ).trackers["t"]
    assert isinstance(unchecked, TrelloTrackerConfig)
    with caplog.at_level(logging.WARNING, logger="bridge.http"):
        session = TrelloSession("t", unchecked, secrets, policy=quiet_policy)
    try:
        assert session.get(f"boards/{boards[0]}")["id"] == boards[0]
    finally:
        session.close()
    assert "t: TLS certificate verification is OFF" in caplog.text


def _asana_table(url: str, emulator: AsanaEmulator, extra: str = "") -> str:
    workspace = next(iter(emulator.state.workspaces))
    return (
        f'[trackers.t]\nkind = "asana"\nurl = "{url}"\ntoken_env = "T_TOKEN"\nworkspace = "{workspace}"\n'
        f'projects = ["{next(iter(emulator.state.projects))}"]\n{extra}\n'
        '[trackers.t.status_map]\n"completed" = "done"\n'
    )


def test_asana_over_https(
    asana_https: tuple[str, AsanaEmulator], certs: Certs, quiet_policy: RetryPolicy
) -> None:
    url, emulator = asana_https
    token = emulator.credentials()["token"]
    project = next(iter(emulator.state.projects))

    refused = parse_config(_asana_table(url, emulator), ConnectorRegistry.default()).trackers["t"]
    assert isinstance(refused, AsanaTrackerConfig)
    session = AsanaSession("t", refused, {"token_env": token}, policy=quiet_policy)
    with pytest.raises(FatalAPIError) as caught:
        session.get_tasks({"project": project, "limit": 5})
    session.close()
    assert str(caught.value).startswith(f"t: TLS certificate verification failed for {url}: ")

    trusted = parse_config(
        _asana_table(url, emulator, f'ca_bundle = "{certs.cert}"'), ConnectorRegistry.default()
    ).trackers["t"]
    assert isinstance(trusted, AsanaTrackerConfig)
    session = AsanaSession("t", trusted, {"token_env": token}, policy=quiet_policy)
    try:
        page = session.get_tasks({"project": project, "limit": 5})
    finally:
        session.close()
    assert isinstance(page["data"], list) and page["data"]
