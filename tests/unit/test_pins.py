"""Installs that do not drift: upper bounds on the libraries whose next major (or 0.x minor) may break the
bridge, one constraints file that CI and the Containerfile install with, and a container image built
from an exact base tag, run as a numeric user, with a health check that reads the configured port."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import requests
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "Containerfile"


def _project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]  # type: ignore[no-any-return]


def _requirements(group: str | None = None) -> dict[str, Requirement]:
    project = _project()
    raw = project["dependencies"] if group is None else project["optional-dependencies"][group]  # type: ignore[index]
    found = (Requirement(line) for line in raw)  # type: ignore[union-attr]
    return {canonicalize_name(req.name): req for req in found}


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin (name==version)"
            pins[canonicalize_name(name)] = version
    return pins


def test_libraries_that_break_on_their_next_release_are_capped() -> None:
    runtime = _requirements()
    tests = _requirements("test")
    for name, source in (
        ("jira", runtime),
        ("sqlmodel", runtime),
        ("typer", runtime),
        ("openapi-core", tests),
    ):
        upper = [spec for spec in source[name].specifier if spec.operator in ("<", "<=", "~=", "==")]
        assert upper, f"{name} has no upper bound in pyproject.toml"


def test_psycopg_is_an_extra_that_the_test_extra_includes() -> None:
    assert "psycopg" not in _requirements(), "SQLite users must not need the PostgreSQL driver"
    assert "psycopg" in _requirements("postgres")
    assert "milestone-bridge" in _requirements("test")
    assert _requirements("test")["milestone-bridge"].extras == {"postgres"}


def test_the_jira_client_still_has_the_private_session_the_connector_uses() -> None:
    """`bridge_jira.client` counts requests through `JIRA._session`, which is not public API: a `jira`
    release that renames it fails here instead of in a pull."""
    from jira import JIRA

    client = JIRA(server="http://127.0.0.1:9", get_server_info=False, token_auth="unused", max_retries=0)
    try:
        assert isinstance(client._session, requests.Session)
        assert "response" in client._session.hooks
    finally:
        client.close()


def test_the_constraints_pin_every_installed_requirement_at_the_installed_version() -> None:
    """Walk the requirements of `.[test]` (which includes `.[postgres]`) as installed: each is pinned, at
    the version installed here, so CI and the image install what was tested."""
    pins = _constraints()
    todo = [Requirement(f"milestone-bridge[{extra}]") for extra in ("test", "postgres")]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = f"{name}{sorted(req.extras)}"
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # an optional requirement of a dependency that this install does not use
        if name != "milestone-bridge":
            assert name in pins, (
                f"{name} is installed but not pinned: add {name}=={dist.version} to constraints.txt"
            )
            assert pins[name] == dist.version, (
                f"{name}: constraints.txt pins {pins[name]}, installed {dist.version}"
            )
        for line in dist.requires or []:
            child = Requirement(line)
            extras = req.extras or {""}
            if child.marker is None or any(child.marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(child)
    assert "psycopg" in seen or any(key.startswith("psycopg") for key in seen)


def test_ci_and_the_containerfile_install_with_the_constraints() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    installs = re.findall(r"^pip install .*$", ci, re.M)
    assert installs and all("-c constraints.txt" in line for line in installs), installs
    container = CONTAINERFILE.read_text(encoding="utf-8")
    assert re.search(r"^COPY [^\n]*\bconstraints\.txt\b", container, re.M)
    assert re.search(r"pip install [^\n]*-c constraints\.txt '\.\[postgres\]'", container)


def test_the_containerfile_names_its_base_image_by_exact_tag() -> None:
    container = CONTAINERFILE.read_text(encoding="utf-8")
    arg = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", container, re.M)
    assert arg, "the base image is a build argument"
    image, _, tag = arg.group(1).partition(":")
    assert image == "python"
    assert re.fullmatch(r"3\.\d+\.\d+-slim-[a-z]+", tag), f"{tag!r} is not an exact tag (3.X.Y-slim-DEBIAN)"
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", container, re.M)


def test_the_container_runs_as_a_numeric_user_and_checks_the_configured_port() -> None:
    container = CONTAINERFILE.read_text(encoding="utf-8")
    user = re.findall(r"^USER (\S+)$", container, re.M)
    assert user and re.fullmatch(r"\d+(:\d+)?", user[-1]), user
    assert int(user[-1].split(":")[0]) > 0
    health = re.search(r"^HEALTHCHECK .*CMD (.+)$", container, re.M)
    assert health and health.group(1) == '["bridge", "health"]'
    assert "9464" not in health.group(0)


def test_a_postgresql_store_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.errors import UserError
    from bridge.store import Store

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the postgres extra were not installed
    with pytest.raises(UserError, match=r"pip install 'milestone-bridge\[postgres\]'") as caught:
        Store("postgresql+psycopg://bridge:hunter2@127.0.0.1:9/bridge")
    assert "hunter2" not in str(caught.value)
    Store("sqlite://").close()  # SQLite needs no driver beyond Python's
