"""Checking recorded HTTP exchanges against a vendor's official OpenAPI document, with openapi-core.

A `Recorder` keeps every request/response pair a `requests` session makes (a response hook); a `Contract`
is one document, loaded once per session, and answers `check(exchange)` with the problems it finds: the
operation is not in the document, a parameter or body the document rejects, a status it does not list,
a response body that does not match the listed schema. An empty list means the exchange conforms.

Every departure from a document that is let through is declared in the "Allowances" section below, each
with the fact in `shared/specs/SOURCES.md` that justifies it. Nothing else passes.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import yaml
from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError
from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import MissingData
from openapi_core.validation.schemas.exceptions import InvalidSchemaValue
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from werkzeug.datastructures import ImmutableMultiDict

# The documents' servers are replaced by this one host (plus the document's base path), so that one
# document serves every sandbox port; requests are checked as if sent to it.
DOC_HOST = "http://sandbox.invalid"


# ---- exchanges ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One request as sent on the wire and the response to it."""

    method: str
    url: str
    request_headers: Mapping[str, str]
    request_body: bytes
    status: int
    response_headers: Mapping[str, str]
    response_body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.url).query, keep_blank_values=True)

    def __str__(self) -> str:
        query = urlsplit(self.url).query
        return f"{self.method} {self.path}{'?' + query if query else ''} -> {self.status}"

    @classmethod
    def from_response(cls, response: requests.Response) -> Exchange:
        sent = response.request
        body = sent.body if sent is not None else None
        raw = body.encode("utf-8") if isinstance(body, str) else body if isinstance(body, bytes) else b""
        return cls(
            method=str(sent.method if sent is not None else "GET").upper(),
            url=str(sent.url if sent is not None else response.url),
            request_headers=dict(sent.headers) if sent is not None else {},
            request_body=raw,
            status=response.status_code,
            response_headers=dict(response.headers),
            response_body=response.content,
        )


class Recorder:
    """A `requests` response hook that keeps every exchange of the sessions it is attached to."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.exchanges.append(Exchange.from_response(response))

    def attach(self, session: requests.Session) -> None:
        session.hooks["response"].append(self.hook)

    def take(self) -> list[Exchange]:
        """The exchanges so far, forgotten here."""
        taken, self.exchanges = self.exchanges, []
        return taken


# ---- contracts ------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    exchange: Exchange
    operation: str | None  # "GET /document/path/{template}", None when the document has no such operation
    problems: list[str] = field(default_factory=list)
    request_checked: bool = False
    response_checked: bool = False

    def __str__(self) -> str:
        where = self.operation or "no operation"
        return f"{self.exchange} [{where}]" + "".join(f"\n    - {p}" for p in self.problems)


@dataclass(frozen=True)
class Allowances:
    """What one document lets through beyond its own text (declared in the section below)."""

    jira_timestamps: bool = False
    nulls: Mapping[str, Sequence[str]] = field(default_factory=dict)  # operation -> JSON pointer patterns
    trailing_slash: bool = False  # `/a/b/` is the operation `/a/b`


class Contract:
    """One vendor document: finds the operation of an exchange and checks the request and the response."""

    def __init__(self, name: str, document: dict[str, Any], base_path: str, allowances: Allowances) -> None:
        self.name = name
        self.document = document
        self.base_path = base_path
        self.allowances = allowances
        document["servers"] = [{"url": DOC_HOST + base_path}]
        _normalise_media_types(document)
        # The documents do not pass openapi-spec-validator (SOURCES.md lists each one's errors:
        # duplicate operationIds, enum defaults, Java regexes, responses without a description), and
        # checking a 3 MB document costs seconds; the operations used here are checked by use instead.
        self.api = OpenAPI.from_dict(document, config=Config(spec_validator_cls=None))
        self._finder = APICallPathFinder(self.api.spec, base_url=None)

    def operation(self, method: str, path: str) -> str | None:
        try:
            found = self._finder.find(method.lower(), DOC_HOST + path)
        except PathError:
            return None
        return f"{method.upper()} {found.path_result.pattern}"

    def check(
        self,
        exchange: Exchange,
        *,
        path: str | None = None,
        request: bool = True,
        response: bool = True,
        allowances: Allowances | None = None,
    ) -> Verdict:
        """Check the request (as if sent to `path`, when given) and the response, unless told not to;
        `allowances` replaces the document's own (`Allowances()`: none, to show what they let through)."""
        allowed = self.allowances if allowances is None else allowances
        wire_path = path or exchange.path
        if self.allowances.trailing_slash and len(wire_path) > 1:
            wire_path = wire_path.rstrip("/")
        verdict = Verdict(exchange, self.operation(exchange.method, wire_path))
        if verdict.operation is None:
            verdict.problems.append(f"{self.name} has no operation {exchange.method} {wire_path}")
            return verdict
        sent = MockRequest(
            DOC_HOST,
            exchange.method.lower(),
            wire_path,
            args=ImmutableMultiDict(exchange.query),  # type: ignore[arg-type]  # repeated keys kept
            headers=dict(exchange.request_headers),
            data=exchange.request_body,
            content_type=media_type(_header(exchange.request_headers, "content-type") or "application/json"),
        )
        with warnings.catch_warnings():
            # openapi-core cannot check OAuth2 and says so on every call; the Jira Cloud agile document
            # declares only OAuth2 for the board and rank operations, so there is nothing to check.
            warnings.filterwarnings("ignore", "Unsupported scheme type")
            if request:
                for error in self.api.request_validator.iter_errors(sent):
                    verdict.problems.extend(self._explain("request", verdict.operation, error, allowed))
                verdict.request_checked = True
            if response:
                self._check_response(exchange, sent, verdict, allowed)
                verdict.response_checked = True
        return verdict

    def _check_response(
        self, exchange: Exchange, request: MockRequest, verdict: Verdict, allowed: Allowances
    ) -> None:
        assert verdict.operation is not None
        if exchange.status == 204 and exchange.response_body:
            verdict.problems.append("a 204 response carries a body")  # RFC 9110 15.3.5: 204 has no content
        answer = MockResponse(
            exchange.response_body,
            status_code=exchange.status,
            headers=dict(exchange.response_headers),
            content_type=media_type(_header(exchange.response_headers, "content-type") or "application/json"),
        )
        for error in self.api.response_validator.iter_errors(request, answer):
            if isinstance(error, MissingData) and self._empty_schema(verdict.operation, exchange.status):
                continue
            verdict.problems.extend(
                self._explain(f"response {exchange.status}", verdict.operation, error, allowed)
            )

    def schema_problems(self, name: str, instance: Any) -> list[str]:
        """What is wrong with `instance` as the document's component schema `name` (OpenAPI 3.0 rules)."""
        registry: Registry[Any] = Registry().with_resource(
            "urn:document", Resource.from_contents(self.document, default_specification=DRAFT4)
        )
        schema = {"$ref": f"urn:document#/components/schemas/{name}"}
        validator = OAS30Validator(schema, registry=registry, format_checker=oas30_format_checker)
        return [f"{_pointer(e)}: {e.message}" for e in validator.iter_errors(instance)]

    def _empty_schema(self, operation: str, status: int) -> bool:
        """Whether the listed response declares a media type whose schema is empty (`{}`) or absent.

        openapi-core reports an empty body as missing data whenever `content` is declared; a schema that
        constrains nothing is met by no body too (the Cloud document declares `{"schema": {}}` for the
        204 of `PUT /issue/{key}` and the 201 of `POST /issueLink`, which the real server sends empty).
        """
        method, template = operation.split(" ", 1)
        responses = self.document["paths"][template][method.lower()]["responses"]
        listed = responses.get(str(status)) or responses.get("default") or {}
        return all(not media.get("schema") for media in (listed.get("content") or {}).values())

    def _explain(self, where: str, operation: str, error: Exception, allowed: Allowances) -> list[str]:
        cause = error.__cause__
        if isinstance(cause, InvalidSchemaValue):
            return [
                f"{where}: {_pointer(e)}: {e.message}{_closest(e)}"
                for e in cause.schema_errors
                if isinstance(e, ValidationError) and not _allowed(e, operation, where, allowed)
            ]
        detail = f" ({cause!r})" if cause is not None else ""
        return [f"{where}: {type(error).__name__}: {error}{detail}"]


def _branches(error: ValidationError) -> list[list[ValidationError]]:
    """The errors of each branch of a failed `anyOf`/`oneOf`."""
    found: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        found.setdefault(sub.relative_schema_path[0], []).append(sub)
    return list(found.values())


def _closest(error: ValidationError) -> str:
    """For a failed `anyOf`/`oneOf`: why its closest branch failed (else nothing)."""
    branches = _branches(error) if error.validator in ("anyOf", "oneOf") else []
    if not branches:
        return ""
    closest = min(branches, key=len)
    return " (closest branch: " + "; ".join(f"{_pointer(e)}: {e.message}" for e in closest) + ")"


def _allowed(error: ValidationError, operation: str, where: str, allowed: Allowances) -> bool:
    """Whether a schema error is one of the departures `allowed` lets through (see "Allowances")."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        # Allowed when some branch fails only by allowed departures.
        return any(all(_allowed(e, operation, where, allowed) for e in b) for b in _branches(error))
    if not where.startswith("response"):
        return False  # every allowance is about what servers send
    if allowed.jira_timestamps and jira_timestamp(error):
        return True
    return (
        error.instance is None
        and error.validator == "type"
        and _matches(_pointer(error), allowed.nulls.get(operation, ()))
    )


def media_type(value: str) -> str:
    """A media type in one spelling: `application/json;charset=UTF-8` and `application/json; charset=utf-8`
    are the same type (RFC 9110 8.3.1: type, subtype and parameter names are case-insensitive, and so is the
    charset value; whitespace around `;` is optional), which openapi-core compares as plain strings."""
    kind, *parameters = value.split(";")
    pairs = []
    for parameter in parameters:
        name, _, raw = parameter.strip().partition("=")
        name, raw = name.strip().lower(), raw.strip().strip('"')
        pairs.append(f"{name}={raw.lower() if name == 'charset' else raw}")
    return "; ".join([kind.strip().lower(), *pairs])


def _normalise_media_types(document: dict[str, Any]) -> None:
    """The media-type keys of every request body and response, in `media_type`'s spelling."""
    holders: list[Any] = []
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                holders.append(operation.get("requestBody"))
                holders.extend((operation.get("responses") or {}).values())
    components = document.get("components", {})
    holders.extend((components.get("responses") or {}).values())
    holders.extend((components.get("requestBodies") or {}).values())
    for holder in holders:
        if isinstance(holder, dict) and isinstance(holder.get("content"), dict):
            holder["content"] = {media_type(k): v for k, v in holder["content"].items()}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _pointer(error: ValidationError) -> str:
    return "/" + "/".join(str(part) for part in error.absolute_path)


def _matches(pointer: str, patterns: Iterable[str]) -> bool:
    """`/a/0/b` matches `/a/*/b`: `*` stands for one array index or object key."""
    parts = pointer.split("/")
    for pattern in patterns:
        wanted = pattern.split("/")
        if len(wanted) == len(parts) and all(w in ("*", p) for w, p in zip(wanted, parts, strict=True)):
            return True
    return False


# ---- loading --------------------------------------------------------------------------------------------


def _read(path: Path) -> dict[str, Any]:
    if path.suffix in (".yaml", ".yml"):
        with path.open("rb") as handle:
            loaded = yaml.load(handle, Loader=yaml.CSafeLoader)  # the C loader: 3 MB in about a second
    else:
        loaded = json.loads(path.read_bytes())
    assert isinstance(loaded, dict), f"{path} is not an OpenAPI document"
    return loaded


@functools.cache
def contract(name: str, path: Path) -> Contract:
    """The contract `name` (a key of `DOCUMENTS`) read from `path`, once per test session."""
    base_path, patch, allowances = DOCUMENTS[name]
    document = _read(path)
    patch(document)
    return Contract(name, document, base_path, allowances)


# ---- Allowances: every departure from the documents that passes, and why -----------------------------
#
# Each one is narrow: a named schema or operation, a JSON pointer, a value shape. SOURCES.md is
# shared/specs/SOURCES.md; "real servers differ" is its section "Where the real servers differ from
# these documents", checked against real Jira Cloud payloads (shared/data/devlake-jira).
#
# Not departures, but readings of the rules, in `Contract` above: media types are compared as RFC 9110
# defines them (`media_type`); a declared media type whose schema is empty or absent is met by an empty
# body (`_empty_schema`); a 204 must have no body; OAuth2 requirements are not checked (openapi-core
# cannot). The test module checks Cloud's `/rest/api/2` requests as the `/rest/api/3` operation's (the
# brief of these tests; SOURCES.md: "Cloud's v2 API has the same paths and shapes as v3, except ... rich
# text") and leaves out the one path no document has:

# `JIRA.add_remote_link` first calls the Application Links plugin's list (`/rest/applinks/latest/
# listApplicationlinks`), which is not part of the platform REST API and is in none of the documents.
JIRA_UNDOCUMENTED_PATHS = ("/rest/applinks/",)

_JIRA_OFFSET = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(\d\d)$")
_FORMATS = FormatChecker()


def jira_timestamp(error: ValidationError) -> bool:
    """A `date-time` that is RFC 3339 once a colon goes into its offset: `...825-0500` as `...825-05:00`.

    SOURCES.md, real servers differ: "Timestamps are sent as `2024-11-26T14:42:25.824-0500` (offset without
    a colon). The documents say RFC 3339 `date-time`, which requires `-05:00`." Jira documents only.
    """
    if error.validator != "format" or error.validator_value != "date-time":
        return False
    found = _JIRA_OFFSET.match(error.instance) if isinstance(error.instance, str) else None
    return found is not None and _FORMATS.conforms(f"{found[1]}{found[2]}:{found[3]}", "date-time")


# SOURCES.md, real servers differ: "Many values are `null` (`from`/`fromString` in change items, ...)
# where the documents do not mark them `nullable`", and change items for user fields carry
# `tmpFromAccountId`/`tmpToAccountId`. In the real payloads (devlake-jira) the nulls of change items are
# `from`, `fromString`, `to`, `toString` (a value set or cleared) and `tmpFromAccountId` (an assignee set
# from nobody); every other null is inside `IssueBean.fields`, which the Cloud document leaves untyped
# and the Data Center allowance below relaxes. So null passes at exactly these keys of change items.
_CHANGE_ITEM_NULLS = ("from", "fromString", "to", "toString", "tmpFromAccountId", "tmpToAccountId")


def _change_items(histories: str) -> list[str]:
    """The pointers of the nullable keys of every change item under `histories` (a pointer pattern)."""
    return [f"{histories}/*/items/*/{key}" for key in _CHANGE_ITEM_NULLS]


JIRA_CLOUD_NULLS: dict[str, list[str]] = {
    "GET /rest/api/3/search/jql": _change_items("/issues/*/changelog/histories"),
    "POST /rest/api/3/search/jql": _change_items("/issues/*/changelog/histories"),
    "GET /rest/api/3/issue/{issueIdOrKey}": _change_items("/changelog/histories"),
    "GET /rest/api/3/issue/{issueIdOrKey}/changelog": _change_items("/values"),
    "POST /rest/api/3/changelog/bulkfetch": _change_items("/issueChangeLogs/*/changeHistories"),
}
JIRA_DC_NULLS: dict[str, list[str]] = {
    "GET /api/2/search": _change_items("/issues/*/changelog/histories"),
    "POST /api/2/search": _change_items("/issues/*/changelog/histories"),
    "GET /api/2/issue/{issueIdOrKey}": _change_items("/changelog/histories"),
}


def _patch_jira_cloud(document: dict[str, Any]) -> None:
    # SOURCES.md, real servers differ: "Change items for user fields carry `tmpFromAccountId` and
    # `tmpToAccountId`; the Cloud document's `ChangeDetails` forbids additional properties." Only these
    # two keys are added (as the strings they hold; their nulls are allowed above): any other unknown key
    # of a change item still fails.
    details = document["components"]["schemas"]["ChangeDetails"]["properties"]
    details["tmpFromAccountId"] = {"type": "string"}
    details["tmpToAccountId"] = {"type": "string"}


def _patch_jira_agile(document: dict[str, Any]) -> None:
    """Nothing to correct: the one defect SOURCES.md lists (a Java `\\p{L}` regex in `issueKeys`) is in
    the DevOps schemas, which no operation used here touches."""


# SOURCES.md, real servers differ: the Data Center document "declares some list endpoints (for example
# `GET /api/2/field`) as returning a single item where the server returns an array" (also defect 1 of
# the COMPATIBILITY.md it cites). These are the list operations used here that declare a single item;
# each is checked as an array of that item, so every element still meets the item schema.
DC_LISTS_DECLARED_AS_ITEMS = (
    "/api/2/field",
    "/api/2/project",
    "/api/2/status",
    "/api/2/issuetype",
    "/api/2/project/{projectIdOrKey}/versions",
    "/api/2/issue/{issueIdOrKey}/remotelink",  # a list without `globalId` (the only way it is called here)
)


def _patch_jira_dc(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    # SOURCES.md, real servers differ: "The Data Center document types every value of `IssueBean.fields`
    # as an object (real values are strings, numbers, arrays and objects)" (COMPATIBILITY.md defect 2:
    # relax only `fields.additionalProperties`). The rest of IssueBean, changelog included, stays.
    schemas["IssueBean"]["properties"]["fields"]["additionalProperties"] = {}
    for path in DC_LISTS_DECLARED_AS_ITEMS:
        media = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        media["schema"] = {"type": "array", "items": media["schema"]}


def _patch_asana(document: dict[str, Any]) -> None:
    # SOURCES.md, asana.yaml: "PyYAML reads response codes such as `200:` as integers, so keys must be
    # converted to strings before validating." Only the keys of `responses` maps are touched.
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and isinstance(operation.get("responses"), dict):
                operation["responses"] = {str(k): v for k, v in operation["responses"].items()}


def _patch_trello(document: dict[str, Any]) -> None:
    # SOURCES.md, trello.json: "Some paths end in a trailing slash (`/webhooks/`, `/boards/`)" where the live
    # API has none: the API treats a path with and without its trailing slash alike (py-trello itself
    # calls `boards/{id}/cards/` and `members/me/boards/`). Each such path is offered without its slash,
    # and `Allowances.trailing_slash` strips the slash of a request path before it is matched.
    paths = document["paths"]
    for path in [p for p in paths if p.endswith("/") and len(p) > 1]:
        paths.setdefault(path.rstrip("/"), copy.deepcopy(paths[path]))
    # SOURCES.md, trello.json: one of its 18 validation errors, "False is not of type 'string'": the
    # `attachments` parameter of `GET /cards/{id}` is `type: string` with `oneOf: [cover, boolean]` and
    # `default: false`, so no value of it (and not its default, which openapi-core checks when the
    # parameter is absent) can pass. Its description: "`true`, `false`, or `cover`": the `oneOf` alone.
    for parameter in paths["/cards/{id}"]["get"]["parameters"]:
        if parameter.get("name") == "attachments":
            parameter["schema"].pop("type", None)


# name -> (the document's base path on the server, its corrections, its allowances)
DOCUMENTS: dict[str, tuple[str, Callable[[dict[str, Any]], None], Allowances]] = {
    "jira-platform-v3": ("", _patch_jira_cloud, Allowances(jira_timestamps=True, nulls=JIRA_CLOUD_NULLS)),
    "jira-software-agile": ("", _patch_jira_agile, Allowances(jira_timestamps=True)),
    # The Data Center server URL is `http://{baseurl}/rest`: its paths lack the `/rest` prefix.
    "jira-software-dc": ("/rest", _patch_jira_dc, Allowances(jira_timestamps=True, nulls=JIRA_DC_NULLS)),
    "asana": ("/api/1.0", _patch_asana, Allowances()),
    "trello": ("/1", _patch_trello, Allowances(trailing_slash=True)),
}


def problems(verdicts: Iterable[Verdict]) -> str:
    """The verdicts with problems, one paragraph each ("" when every exchange conforms)."""
    return "\n".join(str(v) for v in verdicts if v.problems)
