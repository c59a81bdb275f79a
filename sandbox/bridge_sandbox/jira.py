"""A stateful emulator of the Jira REST API, Cloud or Data Center flavour.

It seeds from a Jira search response with `expand=changelog` (the shape of `GET /rest/api/2/search`),
so real exports load as they are, and serves what the `jira` package and the bridge call:

- both: `serverInfo`, `myself` (with `timeZone`), `field`, `project`, `project/{key}`,
  `project/{key}/statuses`, `project/{key}/versions`, `status`, `issuetype`, `issueLinkType`,
  `issue` (POST), `issue/{key}` (GET, PUT with `fields` and `update`, DELETE), `issue/{key}/transitions`,
  `issueLink`, `issue/{key}/remotelink` (create-or-update by `globalId`, list, delete), `mypermissions`
  (per project; see jira_quiet.py), and the notification emails the API's edits would send (`emails` in
  the state: each watcher of an issue an edit changes, unless `notifyUsers=false` with the permission
  to; the control API's edits are a user's and not counted),
  `/rest/agile/1.0/board`, `/rest/agile/1.0/issue/rank`, `/rest/applinks/latest/listApplicationlinks`;
- Cloud (`deploymentType = "Cloud"`): `/rest/api/{2,3}/search/jql` with `nextPageToken`/`isLast` and no
  total; the embedded changelog holds at most the 100 newest histories, newest first, as the real Cloud
  payloads in shared/data/devlake-jira show; `issue/{key}/changelog` (paged, oldest first) and
  `changelog/bulkfetch` give the rest; `issue/bulkfetch` reads up to 100 issues by id or key; bulk edit
  (`bulk/issues/fields`, up to 1,000 issues, Bulk Change needed) runs as a task polled at
  `bulk/queue/{taskId}` (RUNNING on the first poll, then COMPLETE with each issue's outcome). The
  removed `/rest/api/{2,3}/search` answers 410 Gone.
- Data Center (`deploymentType = "Server"`): `/rest/api/2/search` with `startAt`/`maxResults`/`total`;
  `expand=changelog` embeds whole histories, oldest first; there is no paged changelog endpoint (404).

Behaviour kept from the real servers (each a thing a sync must survive):
- timestamps look like `2024-11-26T14:42:25.824-0500` (offset without a colon), in the API user's zone;
- JQL dates are read in the API user's time zone with minute precision (see jql.py);
- every change, the API client's own writes included (field edits, labels, remote links added, changed
  or removed, rank moves), bumps `updated` and adds a changelog history; an edit that changes nothing
  leaves both alone;
- `search/jql` takes at most 100 issues a page when fields are asked for (5000 for ids only);
- a query naming an issue (`key`/`id`) the site lacks is a 400, unless Data Center's `validateQuery` is
  off (`false`, `warn`, `none`), which runs it and returns `warningMessages`;
- the Rank field (`customfield_10019`) holds a LexoRank (`0|i000db:`) and `ORDER BY Rank` sorts by it;
  the rank API moves at most 50 issues a call, in the order given, giving only them new ranks between
  the anchor and its neighbour, and answers 207 with per-issue errors on partial failure; the Rank
  field cannot be set by an edit;
- labels cannot contain spaces (400), a number field takes only numbers (400), a date picker field
  (`add_custom_field` with kind `date`) only a day as `YYYY-MM-DD` or null (400), and a field not on the
  issue's screen cannot be set (400; `off_screen` / the `hide_field` edit puts a field there).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import logging
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge_sandbox import jql
from bridge_sandbox.jira_quiet import BulkTask, Grants, bulk_request, watchers
from bridge_sandbox.messages import HTTPError, Request, Response
from bridge_sandbox.server import Emulator, route

log = logging.getLogger(__name__)

CLOUD_EMBEDDED_HISTORIES = 100
_UPDATED_BOUND = re.compile(r'\s+AND\s+updated\s*(>=|>)\s*"([^"]+)"(?=\s+ORDER\s+BY\s)', re.IGNORECASE)
SITE = "https://sandbox.atlassian.net"
RANK_FIELD = "customfield_10019"
_LEXORANK = re.compile(r"^[0-9]\|[0-9a-z]{6}:[0-9a-z]*$")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_RANK_WIDTH = 6  # LexoRank's integer part: six base-36 digits, then `:` and any further digits
_RANK_STEP = 36**2
SYSTEM_FIELDS: list[tuple[str, str, str]] = [
    ("summary", "Summary", "string"),
    ("description", "Description", "string"),
    ("status", "Status", "status"),
    ("issuetype", "Issue Type", "issuetype"),
    ("project", "Project", "project"),
    ("labels", "Labels", "array"),
    ("components", "Components", "array"),
    ("fixVersions", "Fix versions", "array"),
    ("parent", "Parent", "issuelink"),
    ("issuelinks", "Linked Issues", "array"),
    ("assignee", "Assignee", "user"),
    ("priority", "Priority", "priority"),
    ("resolution", "Resolution", "resolution"),
    ("resolutiondate", "Resolved", "datetime"),
    ("duedate", "Due date", "date"),
    ("created", "Created", "datetime"),
    ("updated", "Updated", "datetime"),
]
READ_ONLY_FIELDS = {"created", "updated", "status", "issuelinks", "resolutiondate", "project"}
DEFAULT_STATUSES = [
    ("10000", "To Do", "new"),
    ("3", "In Progress", "indeterminate"),
    ("10002", "Blocked", "indeterminate"),
    ("10001", "Done", "done"),
]
CATEGORY_NAMES = {"new": (2, "To Do"), "indeterminate": (4, "In Progress"), "done": (3, "Done")}


def jira_error(status: int, message: str) -> HTTPError:
    """An error in Jira's shape: `{"errorMessages": [...], "errors": {}}`."""
    return HTTPError(status, {"errorMessages": [message], "errors": {}})


def format_time(when: datetime, zone: ZoneInfo) -> str:
    """Jira's timestamp form: milliseconds and an offset without a colon."""
    local = when.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


def parse_time(text: str) -> datetime:
    for pattern in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, pattern).astimezone(UTC)
        except ValueError:
            continue
    raise ValueError(f"not a Jira timestamp: {text!r}")


@dataclass
class Issue:
    """One issue: its fields as Jira returns them, its histories oldest first, its remote links."""

    id: str
    key: str
    fields: dict[str, Any]
    histories: list[dict[str, Any]] = field(default_factory=list)
    remote_links: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    """Comments oldest first, each with its body as plain text (shown as ADF through REST v3)."""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def rank(self) -> str:
        """The issue's LexoRank (the Rank field's value), which `ORDER BY Rank` sorts by."""
        return str(self.fields.get(RANK_FIELD) or "")

    @rank.setter
    def rank(self, value: str) -> None:
        self.fields[RANK_FIELD] = value

    def jql_value(self, name: str) -> Any:
        fields = self.fields
        if name == "key":
            return self.key.upper()
        if name == "id":
            return self.id
        if name == "project":
            project = fields.get("project") or {}
            return {str(project.get("key", "")).upper(), str(project.get("id", ""))}
        if name in ("issuetype", "status"):
            value = fields.get(name) or {}
            return {str(value.get("name", "")).casefold(), str(value.get("id", ""))}
        if name == "labels":
            return {str(label).casefold() for label in fields.get("labels") or []}
        if name == "parent":
            parent = fields.get("parent") or {}
            return {str(parent.get("key", "")).upper(), str(parent.get("id", ""))} if parent else None
        if name == "updated":
            return self.updated_at
        if name == "created":
            return self.created_at
        if name == "rank":
            return self.rank
        return None

    def sort_key(self, name: str) -> Any:
        if name in ("key", "id"):
            prefix, _, number = self.key.rpartition("-")
            return (prefix, int(number) if number.isdigit() else 0)
        value = self.jql_value(name)
        if isinstance(value, set):
            return sorted(value)
        return value


class JiraEmulator(Emulator):
    """Jira Cloud (`flavour="cloud"`) or Data Center (`flavour="dc"`)."""

    name: ClassVar[str] = "jira"
    vendor_limit: ClassVar[tuple[int, float] | None] = None  # Jira Cloud publishes no fixed budget

    def __init__(
        self,
        flavour: str = "cloud",
        *,
        email: str = "sandbox@example.com",
        token: str = "sandbox-jira-token",
        time_zone: str = "America/New_York",
    ) -> None:
        if flavour not in ("cloud", "dc"):
            raise ValueError(f"flavour must be 'cloud' or 'dc', not {flavour!r}")
        super().__init__()
        self.flavour = flavour
        self.email = email
        self.token = token
        self.zone = ZoneInfo(time_zone)
        self.issues: dict[str, Issue] = {}
        self.by_id: dict[str, str] = {}
        self.projects: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.issue_types: dict[str, dict[str, Any]] = {}
        self.custom_fields: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.link_types = [
            {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
            {"id": "10003", "name": "Relates", "inward": "relates to", "outward": "relates to"},
        ]
        self._ids = 100000
        self._top_rank: str | None = None
        self.off_screen: set[str] = set()
        """Fields an edit cannot set (not on the issue's edit screen), as an admin may configure."""
        self.grants = Grants()
        """The API account's permissions (all of them until the control API's `set_permissions`)."""
        self.emails = 0
        """Notification emails sent: each watcher of an issue, for each edit changing it unsuppressed."""
        self.bulk_tasks: dict[str, BulkTask] = {}
        self.bulk_refused: set[str] = set()
        """Issue keys a bulk edit fails for (as an issue whose workflow forbids editing would)."""
        self._version = 0
        self._search_cache: dict[str, tuple[int, list[str], list[datetime], list[tuple[str, bool]]]] = {}
        self._add_custom_field(RANK_FIELD, "Rank", "any", "com.pyxis.greenhopper.jira:gh-lexo-rank")
        for status_id, status_name, category in DEFAULT_STATUSES:
            self._status(status_id, status_name, category)

    # ---- seeding ---------------------------------------------------------------------------------

    @classmethod
    def from_search(
        cls, source: str | Path | dict[str, Any], flavour: str = "cloud", **kwargs: Any
    ) -> JiraEmulator:
        """Seed from a search response (`{"issues": [...]}`, a dict or a JSON file), as exported."""
        emulator = cls(flavour, **kwargs)
        if isinstance(source, str | Path):
            with open(source, encoding="utf-8") as handle:
                source = json.load(handle)
        assert isinstance(source, dict)
        emulator.load(source.get("issues", []), names=source.get("names") or {})
        return emulator

    def load(self, issues: Iterable[dict[str, Any]], names: dict[str, str] | None = None) -> None:
        for raw in issues:
            self._load_issue(raw, names or {})
        self._changed()

    def _load_issue(self, raw: dict[str, Any], names: dict[str, str]) -> None:
        fields = dict(raw.get("fields") or {})
        histories = list((raw.get("changelog") or {}).get("histories") or [])
        histories.sort(
            key=lambda h: (parse_time(h["created"]), int(h["id"]) if str(h["id"]).isdigit() else 0)
        )
        issue = Issue(id=str(raw["id"]), key=str(raw["key"]), fields=fields, histories=histories)
        issue.created_at = parse_time(fields["created"]) if fields.get("created") else self.clock.now()
        issue.updated_at = parse_time(fields["updated"]) if fields.get("updated") else issue.created_at
        if not isinstance(fields.get(RANK_FIELD), str) or not _LEXORANK.match(fields[RANK_FIELD]):
            issue.rank = lexorank_after(self._top_rank)
        self._note_rank(issue.rank)
        self._register(issue)
        for name, value in fields.items():
            if name.startswith("customfield_") and name not in self.custom_fields:
                self._add_custom_field(name, names.get(name) or _guess_field_name(name), _schema_type(value))
        self._ids = max(self._ids, int(issue.id) + 1 if issue.id.isdigit() else self._ids)

    def _note_rank(self, rank: str) -> None:
        if self._top_rank is None or rank > self._top_rank:
            self._top_rank = rank

    def _register(self, issue: Issue) -> None:
        self.issues[issue.key] = issue
        self.by_id[issue.id] = issue.key
        fields = issue.fields
        project = fields.get("project")
        if isinstance(project, dict) and project.get("key"):
            self.projects.setdefault(
                project["key"], {k: project[k] for k in ("id", "key", "name") if k in project}
            )
        status = fields.get("status")
        if isinstance(status, dict) and status.get("id"):
            category = ((status.get("statusCategory") or {}).get("key")) or "indeterminate"
            self._status(str(status["id"]), str(status.get("name", status["id"])), category)
        issue_type = fields.get("issuetype")
        if isinstance(issue_type, dict) and issue_type.get("id"):
            self.issue_types.setdefault(str(issue_type["id"]), _issue_type(issue_type))
        for version in fields.get("fixVersions") or []:
            if isinstance(version, dict) and version.get("id") and isinstance(project, dict):
                self.versions.setdefault(str(version["id"]), {**version, "projectKey": project.get("key")})

    def _status(self, status_id: str, name: str, category: str) -> dict[str, Any]:
        if status_id not in self.statuses:
            number, label = CATEGORY_NAMES.get(category, CATEGORY_NAMES["indeterminate"])
            self.statuses[status_id] = {
                "self": f"{SITE}/rest/api/2/status/{status_id}",
                "id": status_id,
                "name": name,
                "description": "",
                "statusCategory": {"id": number, "key": category, "name": label, "colorName": "blue-gray"},
            }
        return self.statuses[status_id]

    def _add_custom_field(self, field_id: str, name: str, kind: str, custom: str | None = None) -> None:
        number = field_id.removeprefix("customfield_")
        self.custom_fields[field_id] = {
            "id": field_id,
            "key": field_id,
            "name": name,
            "custom": True,
            "orderable": True,
            "navigable": True,
            "searchable": True,
            "clauseNames": [f"cf[{number}]", name],
            "schema": {
                "type": kind,
                "custom": custom or "com.atlassian.jira.plugin.system.customfieldtypes:float",
                "customId": int(number) if number.isdigit() else 0,
            },
        }

    def add_custom_field(self, name: str, kind: str = "number") -> str:
        """Create a custom field (as an admin would); returns its id."""
        with self.lock:
            number = 10100 + len(self.custom_fields)
            while f"customfield_{number}" in self.custom_fields:
                number += 1
            custom = {
                "number": "com.atlassian.jira.plugin.system.customfieldtypes:float",
                "string": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
                "date": "com.atlassian.jira.plugin.system.customfieldtypes:datepicker",
            }.get(kind, "com.atlassian.jira.plugin.system.customfieldtypes:textfield")
            self._add_custom_field(f"customfield_{number}", name, kind, custom)
            return f"customfield_{number}"

    # ---- auth and errors -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> str:
        header = request.header("authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value == self.token:
            return self.email
        if scheme.lower() == "basic":
            try:
                user, _, secret = base64.b64decode(value).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, secret = "", ""
            if user == self.email and secret == self.token:
                return user
        raise jira_error(401, "You are not authenticated. Authentication required to perform this operation.")

    def credentials(self) -> dict[str, str]:
        return {"email": self.email, "token": self.token, "flavour": self.flavour}

    def error_body(self, status: int, message: str) -> Any:
        return {"errorMessages": [message], "errors": {}}

    # ---- helpers ---------------------------------------------------------------------------------

    def _changed(self) -> None:
        self._version += 1
        self._search_cache.clear()

    def _issue(self, key_or_id: str) -> Issue:
        key = self.by_id.get(key_or_id, key_or_id.upper())
        issue = self.issues.get(key)
        if issue is None:
            raise jira_error(404, "Issue does not exist or you do not have permission to see it.")
        return issue

    def _now_text(self) -> tuple[datetime, str]:
        now = self.clock.now()
        return now, format_time(now, self.zone)

    def _author(self) -> dict[str, Any]:
        if self.flavour == "cloud":
            return {"accountId": "sandbox-api-user", "displayName": "Sandbox API user", "active": True}
        return {"name": "sandbox", "key": "sandbox", "displayName": "Sandbox API user", "active": True}

    def record_change(self, issue: Issue, items: list[dict[str, Any]]) -> None:
        """Bump `updated` and add one history with these items (nothing to record: just the bump)."""
        now, text = self._now_text()
        issue.updated_at = now
        issue.fields["updated"] = text
        if items:
            self._ids += 1
            issue.histories.append(
                {"id": str(self._ids), "author": self._author(), "created": text, "items": items}
            )
        self._changed()

    def _base(self) -> str:
        return SITE

    # ---- platform: server, user, metadata --------------------------------------------------------

    @route("GET", "/rest/api/{version}/serverInfo")
    def server_info(self, request: Request, version: str) -> Any:
        _now, text = self._now_text()
        cloud = self.flavour == "cloud"
        numbers = [1001, 0, 0] if cloud else [10, 3, 4]
        return {
            "baseUrl": self._base(),
            "version": "1001.0.0-SNAPSHOT" if cloud else "10.3.4",
            "versionNumbers": numbers,
            "deploymentType": "Cloud" if cloud else "Server",
            "buildNumber": 100282 if cloud else 10030004,
            "buildDate": "2026-01-01T00:00:00.000+0000",
            "serverTime": text,
            "scmInfo": "0" * 40,
            "serverTitle": "Sandbox Jira",
        }

    @route("GET", "/rest/api/{version}/myself")
    def myself(self, request: Request, version: str) -> Any:
        user = {
            "self": f"{SITE}/rest/api/{version}/myself",
            "emailAddress": self.email,
            "displayName": "Sandbox API user",
            "active": True,
            "timeZone": self.zone.key,
            "locale": "en_US",
        }
        user.update(self._author())
        return user

    @route("GET", "/rest/api/{version}/field")
    def fields(self, request: Request, version: str) -> Any:
        system = [
            {
                "id": fid,
                "key": fid,
                "name": name,
                "custom": False,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [fid],
                "schema": {"type": kind, "system": fid},
            }
            for fid, name, kind in SYSTEM_FIELDS
        ]
        return system + list(self.custom_fields.values())

    @route("GET", "/rest/api/{version}/project")
    def project_list(self, request: Request, version: str) -> Any:
        return [self._project_json(p) for p in self.projects.values()]

    @route("GET", "/rest/api/{version}/project/search")
    def project_search(self, request: Request, version: str) -> Any:
        projects = [self._project_json(p) for p in self.projects.values()]
        start = request.int_arg("startAt", 0)
        size = request.int_arg("maxResults", 50, low=1, high=100)
        page = projects[start : start + size]
        return {
            "startAt": start,
            "maxResults": size,
            "total": len(projects),
            "isLast": start + size >= len(projects),
            "values": page,
        }

    @route("GET", "/rest/api/{version}/project/{key}")
    def project(self, request: Request, version: str, key: str) -> Any:
        for project in self.projects.values():
            if key in (project["key"], project.get("id")):
                return self._project_json(project)
        raise HTTPError(
            404, {"errorMessages": [f"No project could be found with key '{key}'."], "errors": {}}
        )

    def _project_json(self, project: dict[str, Any]) -> dict[str, Any]:
        return {
            "self": f"{SITE}/rest/api/2/project/{project.get('id')}",
            "id": str(project.get("id", "")),
            "key": project["key"],
            "name": project.get("name", project["key"]),
            "projectTypeKey": "software",
            "simplified": False,
            "issueTypes": list(self.issue_types.values()),
        }

    @route("GET", "/rest/api/{version}/project/{key}/statuses")
    def project_statuses(self, request: Request, version: str, key: str) -> Any:
        self.project(request, version, key)
        statuses = list(self.statuses.values())
        return [{**t, "statuses": statuses} for t in self.issue_types.values()]

    @route("GET", "/rest/api/{version}/project/{key}/versions")
    def project_versions(self, request: Request, version: str, key: str) -> Any:
        # `projectKey` is the emulator's own index: Jira's Version has no such key (the documents forbid it).
        return [
            {k: v for k, v in found.items() if k != "projectKey"}
            for found in self.versions.values()
            if found.get("projectKey") == key.upper()
        ]

    @route("GET", "/rest/api/{version}/status")
    def status_list(self, request: Request, version: str) -> Any:
        return list(self.statuses.values())

    @route("GET", "/rest/api/{version}/issuetype")
    def issue_type_list(self, request: Request, version: str) -> Any:
        return list(self.issue_types.values())

    @route("GET", "/rest/api/{version}/issueLinkType")
    def link_type_list(self, request: Request, version: str) -> Any:
        return {"issueLinkTypes": self.link_types}

    @route("GET", "/rest/api/{version}/label")
    def labels(self, request: Request, version: str) -> Any:
        """Cloud's paged list of every label in use (Data Center has no such endpoint)."""
        if self.flavour != "cloud":
            raise self.not_found(request)
        found = sorted(
            {str(label) for issue in self.issues.values() for label in issue.fields.get("labels") or []}
        )
        start = request.int_arg("startAt", 0)
        size = request.int_arg("maxResults", 1000, low=1, high=1000)
        page = found[start : start + size]
        last = start + size >= len(found)
        return {"startAt": start, "maxResults": size, "total": len(found), "isLast": last, "values": page}

    @route("GET", "/rest/applinks/latest/listApplicationlinks")
    def application_links(self, request: Request) -> Any:
        return []

    # ---- search ------------------------------------------------------------------------------------

    def _matching(self, query_text: str) -> tuple[list[str], int]:
        """Keys matching a query, in its order: `keys[start:]` of the (keys, start) returned (the list
        is the cache's own: not to be changed); cached until the next change.

        Incremental syncs send the same query with a moving `updated >=` bound, page after page. Like
        the real server's index, the emulator answers those from the unbounded query's sorted result by
        bisecting on the updated minute, instead of scanning every issue for every page; and it does not
        copy the rest of the result for each page (at 100,000 issues that copy, and freeing it, was a
        third of the emulator's time serving a first pull, and grew with the site).
        """
        bound = _UPDATED_BOUND.search(query_text)
        if bound is not None:
            base = query_text[: bound.start()] + query_text[bound.end() :]
            keys, minutes, order = self._sorted(base)
            # Only a top-level AND clause can be lifted out; OR binds looser and would change the query.
            if order[:1] == [("updated", False)] and not re.search(r"\bOR\b", base, re.IGNORECASE):
                try:
                    limit = jql.parse_date(bound.group(2), self.zone).astimezone(UTC)
                except jql.JQLError as exc:
                    raise jira_error(400, str(exc)) from None
                pick = bisect.bisect_left if bound.group(1) == ">=" else bisect.bisect_right
                return keys, pick(minutes, limit)
        return self._sorted(query_text)[0], 0

    def _sorted(self, query_text: str) -> tuple[list[str], list[datetime], list[tuple[str, bool]]]:
        cached = self._search_cache.get(query_text)
        if cached is not None and cached[0] == self._version:
            return cached[1], cached[2], cached[3]
        try:
            query = jql.parse(query_text, self.zone)
        except jql.JQLError as exc:
            raise jira_error(400, str(exc)) from None
        keys = [key for key, issue in self.issues.items() if query.predicate(issue)]
        order = list(query.order) or [("key", True)]  # Jira's default order is newest key first
        for name, descending in reversed(order):
            keys.sort(key=lambda k, n=name: self.issues[k].sort_key(n), reverse=descending)  # type: ignore[misc]
        minutes = [self.issues[k].updated_at.replace(second=0, microsecond=0) for k in keys]
        self._search_cache[query_text] = (self._version, keys, minutes, order)
        return keys, minutes, order

    def _search_params(self, request: Request) -> dict[str, Any]:
        if request.method == "POST":
            body = request.json()
            return {
                "jql": body.get("jql", ""),
                "fields": body.get("fields"),
                "expand": body.get("expand"),
                "maxResults": body.get("maxResults"),
                "startAt": body.get("startAt"),
                "nextPageToken": body.get("nextPageToken"),
                "validateQuery": body.get("validateQuery"),
            }
        return {
            "jql": request.arg("jql", ""),
            "fields": request.args("fields") or None,
            "expand": request.arg("expand"),
            "maxResults": request.arg("maxResults"),
            "startAt": request.arg("startAt"),
            "nextPageToken": request.arg("nextPageToken"),
            "validateQuery": request.arg("validateQuery"),
        }

    def _missing_issues(self, query_text: str) -> list[str]:
        """Jira's validation of a query naming issues by key or id: one message per issue it lacks."""
        try:
            query = jql.parse(query_text, self.zone)
        except jql.JQLError as exc:
            raise jira_error(400, str(exc)) from None
        messages = []
        for name, value in query.references:
            known = value.upper() in self.issues if name == "key" else value in self.by_id
            if not known:
                messages.append(f"An issue with key '{value}' does not exist for field '{name}'.")
        return messages

    @route("GET", "/rest/api/{version}/search/jql")
    @route("POST", "/rest/api/{version}/search/jql")
    def search_jql(self, request: Request, version: str) -> Any:
        if self.flavour != "cloud":
            raise self.not_found(request)
        params = self._search_params(request)
        fields = _field_list(params["fields"], default=["id"])
        limit = 5000 if set(fields) <= {"id", "key"} else 100
        size = _bounded_int(params["maxResults"], 50, 1, limit, "maxResults")
        offset = self._decode_token(params["nextPageToken"], params["jql"])
        with self.lock:
            missing = self._missing_issues(params["jql"])
            if missing:  # the enhanced search always validates strictly
                raise HTTPError(400, {"errorMessages": missing, "errors": {}})
            keys, first = self._matching(params["jql"])
            page = keys[first + offset : first + offset + size]
            issues = [self._issue_json(self.issues[k], fields, params["expand"], version) for k in page]
        done = first + offset + size >= len(keys)
        body: dict[str, Any] = {"issues": issues, "isLast": done}
        if not done:
            body["nextPageToken"] = self._encode_token(offset + size, params["jql"])
        if _expands(params["expand"], "names"):
            body["names"] = self._names()
        return body

    @route("GET", "/rest/api/{version}/search")
    @route("POST", "/rest/api/{version}/search")
    def search(self, request: Request, version: str) -> Any:
        if self.flavour == "cloud":
            message = "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."
            raise jira_error(410, message)
        params = self._search_params(request)
        fields = _field_list(params["fields"], default=["*navigable"])
        size = _bounded_int(params["maxResults"], 50, 0, 1000, "maxResults")
        start = _bounded_int(params["startAt"], 0, 0, None, "startAt")
        validate = params["validateQuery"]
        strict = validate is None or str(validate).lower() in ("true", "strict")
        with self.lock:
            missing = self._missing_issues(params["jql"])
            if missing and strict:
                raise HTTPError(400, {"errorMessages": missing, "errors": {}})
            keys, first = self._matching(params["jql"])
            page = keys[first + start : first + start + size]
            issues = [self._issue_json(self.issues[k], fields, params["expand"], version) for k in page]
        body: dict[str, Any] = {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": size,
            "total": len(keys) - first,
            "issues": issues,
        }
        if missing:  # `validateQuery=false` (or `warn`): the query runs, the problems come back as warnings
            body["warningMessages"] = missing
        if _expands(params["expand"], "names"):
            body["names"] = self._names()
        return body

    def _encode_token(self, offset: int, query: str) -> str:
        raw = json.dumps({"o": offset, "q": zlib.crc32(query.encode())}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode_token(self, token: str | None, query: str) -> int:
        if not token:
            return 0
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if data["q"] != zlib.crc32(query.encode()):
                raise ValueError("token of another query")
            return int(data["o"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise jira_error(400, "The provided next page token is invalid or expired.") from None

    def _names(self) -> dict[str, str]:
        names = {fid: name for fid, name, _ in SYSTEM_FIELDS}
        names.update({fid: f["name"] for fid, f in self.custom_fields.items()})
        return names

    def _issue_json(
        self, issue: Issue, fields: list[str], expand: str | None, version: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
            "id": issue.id,
            "self": f"{SITE}/rest/api/{version}/issue/{issue.id}",
            "key": issue.key,
        }
        selected = _select_fields(issue.fields, fields)
        if selected is not None:
            if version == "3":
                selected = {
                    k: _adf(v) if k in ("description", "environment") else v for k, v in selected.items()
                }
            body["fields"] = selected
        if _expands(expand, "changelog"):
            body["changelog"] = self._embedded_changelog(issue)
        return body

    def _embedded_changelog(self, issue: Issue) -> dict[str, Any]:
        total = len(issue.histories)
        if self.flavour == "cloud":
            newest = list(reversed(issue.histories[-CLOUD_EMBEDDED_HISTORIES:]))
            return {"startAt": 0, "maxResults": len(newest), "total": total, "histories": newest}
        return {"startAt": 0, "maxResults": total, "total": total, "histories": list(issue.histories)}

    # ---- changelogs (Cloud) ------------------------------------------------------------------------

    @route("GET", "/rest/api/{version}/issue/{key}/changelog")
    def changelog_page(self, request: Request, version: str, key: str) -> Any:
        if self.flavour != "cloud":
            raise self.not_found(request)
        start = request.int_arg("startAt", 0)
        size = request.int_arg("maxResults", 100, low=1, high=100)
        with self.lock:
            issue = self._issue(key)
            values = issue.histories[start : start + size]
            total = len(issue.histories)
        last = start + size >= total
        base = f"{SITE}/rest/api/{version}/issue/{issue.key}/changelog"
        body: dict[str, Any] = {
            "self": f"{base}?maxResults={size}&startAt={start}",
            "maxResults": size,
            "startAt": start,
            "total": total,
            "isLast": last,
            "values": values,
        }
        if not last:
            body["nextPage"] = f"{base}?maxResults={size}&startAt={start + size}"
        return body

    @route("POST", "/rest/api/{version}/issue/bulkfetch")
    def issue_bulk(self, request: Request, version: str) -> Any:
        """Cloud's bulk read of up to 100 issues by id or key, by ascending id; unknown ones left out."""
        if self.flavour != "cloud":
            raise self.not_found(request)
        body = request.json()
        wanted = body.get("issueIdsOrKeys") if isinstance(body, dict) else None
        if not isinstance(wanted, list) or not wanted or len(wanted) > 100:
            raise jira_error(400, "Between 1 and 100 issue IDs or keys must be given.")
        fields = _field_list(body.get("fields"), default=["*navigable"])
        expand = body.get("expand")
        expand_text = ",".join(str(e) for e in expand) if isinstance(expand, list) else expand
        with self.lock:
            found = {}
            for key_or_id in wanted:
                text = str(key_or_id)
                key = self.by_id.get(text, text.upper())
                if key in self.issues:
                    found[key] = self.issues[key]
            ordered = sorted(found.values(), key=lambda i: int(i.id) if i.id.isdigit() else 0)
            issues = [self._issue_json(i, fields, expand_text, version) for i in ordered]
        result: dict[str, Any] = {"issues": issues, "issueErrors": []}
        if _expands(expand_text, "names"):
            result["names"] = self._names()
        return result

    @route("POST", "/rest/api/{version}/changelog/bulkfetch")
    def changelog_bulk(self, request: Request, version: str) -> Any:
        if self.flavour != "cloud":
            raise self.not_found(request)
        body = request.json()
        wanted = body.get("issueIdsOrKeys") or []
        if not wanted or len(wanted) > 1000:
            raise jira_error(400, "issueIdsOrKeys must list between 1 and 1000 issues.")
        size = _bounded_int(body.get("maxResults"), 1000, 1, 10000, "maxResults")
        field_ids = set(body.get("fieldIds") or [])
        offset = self._decode_token(body.get("nextPageToken"), json.dumps(wanted))
        with self.lock:
            entries = self._bulk_entries(wanted, field_ids)
        page = entries[offset : offset + size]
        grouped: dict[str, list[dict[str, Any]]] = {}
        for issue_id, history in page:
            grouped.setdefault(issue_id, []).append(history)
        result: dict[str, Any] = {
            "issueChangeLogs": [{"issueId": i, "changeHistories": h} for i, h in grouped.items()]
        }
        if offset + size < len(entries):
            result["nextPageToken"] = self._encode_token(offset + size, json.dumps(wanted))
        return result

    def _bulk_entries(self, wanted: list[str], field_ids: set[str]) -> list[tuple[str, dict[str, Any]]]:
        entries = []
        for key in wanted:
            key_or_id = str(key)
            if self.by_id.get(key_or_id, key_or_id.upper()) not in self.issues:
                continue  # the real endpoint leaves out issues it cannot see
            issue = self._issue(key_or_id)
            for history in issue.histories:
                if field_ids:
                    items = [i for i in history["items"] if i.get("fieldId", i.get("field")) in field_ids]
                    if not items:
                        continue
                    history = {**history, "items": items}
                entries.append((issue.id, history))
        return entries

    # ---- issues --------------------------------------------------------------------------------------

    @route("GET", "/rest/api/{version}/issue/{key}")
    def issue_get(self, request: Request, version: str, key: str) -> Any:
        fields = _field_list(request.args("fields") or None, default=["*all"])
        with self.lock:
            return self._issue_json(self._issue(key), fields, request.arg("expand"), version)

    @route("PUT", "/rest/api/{version}/issue/{key}")
    def issue_put(self, request: Request, version: str, key: str) -> Any:
        """Edit an issue; `notifyUsers=false` needs Administer (Projects): Cloud then ignores the flag,
        Data Center refuses the edit (403)."""
        body = request.json()
        with self.lock:
            issue = self._issue(key)
            notify = request.arg("notifyUsers", "true") != "false"
            if not notify and not self.grants.may_silence(_project_key(issue)):
                if self.flavour == "dc":
                    raise jira_error(403, "To discard the user notification either admin or project admin "
                                     "permissions are required.")  # fmt: skip
                notify = True
            items = self.apply_update(issue, body.get("fields") or {}, body.get("update") or {})
            if items:  # an edit that changes nothing leaves `updated` and the history alone
                self.record_change(issue, items)
                self._notify(issue, notify)
        return Response(204)

    def _notify(self, issue: Issue, notify: bool) -> None:
        if notify:
            self.emails += watchers(issue.fields)

    @route("GET", "/rest/api/{version}/mypermissions")
    def my_permissions(self, request: Request, version: str) -> Any:
        """The account's permissions in a project (`projectKey`), or in any project without one."""
        wanted = request.args("permissions") if self.flavour == "cloud" else []  # DC answers every key
        if not wanted and self.flavour == "cloud":
            raise jira_error(400, "The 'permissions' query parameter is required.")
        project = request.arg("projectKey")
        with self.lock:
            if project is not None and project not in self.projects:
                raise jira_error(404, f"No project could be found with key '{project}'.")
            return self.grants.json(wanted, project)

    @route("POST", "/rest/api/{version}/bulk/issues/fields")
    def bulk_edit(self, request: Request, version: str) -> Any:
        """Cloud's bulk edit: one asynchronous task editing up to 1,000 issues (Bulk Change needed)."""
        if self.flavour != "cloud":
            raise jira_error(404, "null for uri: /rest/api/2/bulk/issues/fields")
        issues, fields, update, notify = bulk_request(request.json())
        with self.lock:
            if not self.grants.has("BULK_CHANGE", None):
                raise HTTPError(403, {"errors": [{"message": "You don't have the Bulk Change permission."}]})
            self._ids += 1
            task = BulkTask(str(self._ids), total=len(issues))
            for name in issues:
                self._bulk_one(task, name, fields, update, notify)
            self.bulk_tasks[task.task_id] = task
        return Response(201, {"taskId": task.task_id})

    def _bulk_one(
        self, task: BulkTask, name: str, fields: dict[str, Any], update: dict[str, Any], notify: bool
    ) -> None:
        key = self.by_id.get(name, name.upper())
        issue = self.issues.get(key)
        if issue is None:
            task.invalid += 1
            return
        if key in self.bulk_refused:
            task.failed[issue.id] = ["The issue's workflow does not allow it to be edited."]
            return
        try:
            items = self.apply_update(issue, fields, update)
        except HTTPError as refused:
            errors = (refused.body or {}).get("errors") if isinstance(refused.body, dict) else None
            task.failed[issue.id] = [str(v) for v in (errors or {}).values()] or ["Edit refused."]
            return
        if items:
            self.record_change(issue, items)
            self._notify(issue, notify)
        task.processed.append(int(issue.id))

    @route("GET", "/rest/api/{version}/bulk/queue/{task_id}")
    def bulk_queue(self, request: Request, version: str, task_id: str) -> Any:
        with self.lock:
            task = self.bulk_tasks.get(task_id)
            if task is None or self.flavour != "cloud":
                raise HTTPError(404, {"errors": [{"message": f"Task {task_id} was not found."}]})
            return task.json(self._author())

    def apply_update(
        self, issue: Issue, fields: dict[str, Any], update: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Apply `fields` (set) and `update` (add/remove/set operations); return the history items."""
        errors: dict[str, str] = {}
        changes: dict[str, Any] = {}
        for name, value in fields.items():
            self._check_settable(name, errors)
            changes[name] = value
        for name, operations in update.items():
            self._check_settable(name, errors)
            current = changes.get(name, issue.fields.get(name))
            changes[name] = _apply_operations(current, operations, errors, name)
        for name, value in changes.items():
            kind = (self.custom_fields.get(name) or {}).get("schema", {}).get("type")
            if (
                kind == "number"
                and value is not None
                and (isinstance(value, bool) or not isinstance(value, int | float))
            ):
                errors[name] = "Operation value must be a number."
            custom = str((self.custom_fields.get(name) or {}).get("schema", {}).get("custom") or "")
            if custom.endswith(":textfield") and value is not None and not isinstance(value, str):
                errors[name] = "Operation value must be a string."
            if kind == "date" and value is not None and not _iso_day(value):
                errors[name] = "Error parsing date string: " + str(value)
        for label in changes.get("labels") or []:
            if not isinstance(label, str) or " " in label:
                errors["labels"] = "The label 'x' contains spaces which is invalid.".replace(
                    "'x'", repr(label)
                )
        if errors:
            raise HTTPError(400, {"errorMessages": [], "errors": errors})
        items = []
        for name, value in changes.items():
            before = issue.fields.get(name)
            value = self._normalise_field(name, value)
            if before == value:
                continue
            issue.fields[name] = value
            items.append(_history_item(name, before, value, self._field_name(name)))
        return items

    def _check_settable(self, name: str, errors: dict[str, str]) -> None:
        known = {fid for fid, _, _ in SYSTEM_FIELDS} | set(self.custom_fields)
        if name in READ_ONLY_FIELDS or name not in known or name == RANK_FIELD or name in self.off_screen:
            errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."

    def _normalise_field(self, name: str, value: Any) -> Any:
        if name == "issuetype" and isinstance(value, dict):
            found = self._find_type(value)
            return found if found is not None else value
        if name == "parent" and isinstance(value, dict):
            parent = self._issue(str(value.get("key") or value.get("id")))
            return {"id": parent.id, "key": parent.key}
        return value

    def _find_type(self, wanted: dict[str, Any]) -> dict[str, Any] | None:
        for issue_type in self.issue_types.values():
            if wanted.get("id") == issue_type["id"] or wanted.get("name") == issue_type["name"]:
                return issue_type
        return None

    def _field_name(self, name: str) -> str:
        if name in self.custom_fields:
            return str(self.custom_fields[name]["name"])
        return name

    @route("POST", "/rest/api/{version}/issue")
    def issue_create(self, request: Request, version: str) -> Any:
        fields = dict(request.json().get("fields") or {})
        with self.lock:
            issue = self.create_issue(fields)
        return Response(
            201, {"id": issue.id, "key": issue.key, "self": f"{SITE}/rest/api/{version}/issue/{issue.id}"}
        )

    def create_issue(self, fields: dict[str, Any], status: str | None = None) -> Issue:
        project_ref = fields.get("project") or {}
        project_key = project_ref.get("key") if isinstance(project_ref, dict) else str(project_ref)
        project = self.projects.get(str(project_key).upper()) if project_key else None
        if project is None:
            raise HTTPError(400, {"errorMessages": [], "errors": {"project": "valid project is required"}})
        issue_type = self._find_type(fields.get("issuetype") or {}) or _issue_type(
            {"id": "10001", "name": fields.get("issuetype", {}).get("name", "Task")}
        )
        self.issue_types.setdefault(issue_type["id"], issue_type)
        number = 1 + max(
            (int(k.rsplit("-", 1)[1]) for k in self.issues if k.startswith(project["key"] + "-")), default=0
        )
        self._ids += 1
        now, text = self._now_text()
        target = self._find_status(status) if status else self.statuses["10000"]
        base = {
            "summary": fields.get("summary", ""),
            "labels": [],
            "issuelinks": [],
            "fixVersions": [],
            "components": [],
        }
        issue = Issue(id=str(self._ids), key=f"{project['key']}-{number}", fields={**base, **fields})
        issue.fields.update(
            {
                "project": dict(project),
                "issuetype": issue_type,
                "status": target,
                "created": text,
                "updated": text,
            }
        )
        if "parent" in fields:
            issue.fields["parent"] = self._normalise_field("parent", fields["parent"])
        issue.created_at = issue.updated_at = now
        issue.rank = lexorank_after(self._top_rank)
        self._note_rank(issue.rank)
        self._register(issue)
        self._changed()
        return issue

    def _find_status(self, wanted: str) -> dict[str, Any]:
        for status in self.statuses.values():
            if wanted in (status["id"], status["name"]) or wanted.casefold() == status["name"].casefold():
                return status
        raise jira_error(400, f"No status named {wanted!r}.")

    @route("DELETE", "/rest/api/{version}/issue/{key}")
    def issue_delete(self, request: Request, version: str, key: str) -> Any:
        with self.lock:
            self.delete_issue(key)
        return Response(204)

    def delete_issue(self, key: str) -> None:
        issue = self._issue(key)
        del self.issues[issue.key]
        self.by_id.pop(issue.id, None)
        self._changed()

    @route("GET", "/rest/api/{version}/issue/{key}/transitions")
    def transitions(self, request: Request, version: str, key: str) -> Any:
        with self.lock:
            self._issue(key)
            return {
                "transitions": [{"id": s["id"], "name": s["name"], "to": s} for s in self.statuses.values()]
            }

    @route("POST", "/rest/api/{version}/issue/{key}/transitions")
    def transition_post(self, request: Request, version: str, key: str) -> Any:
        wanted = str((request.json().get("transition") or {}).get("id", ""))
        with self.lock:
            self.transition(key, wanted)
        return Response(204)

    def transition(self, key: str, status: str) -> Issue:
        """Move an issue to a status (id or name), as a user dragging it across the board would."""
        issue = self._issue(key)
        target = self._find_status(status)
        before = issue.fields.get("status") or {}
        if before.get("id") == target["id"]:
            return issue
        issue.fields["status"] = target
        item = {
            "field": "status",
            "fieldtype": "jira",
            "fieldId": "status",
            "from": before.get("id"),
            "fromString": before.get("name"),
            "to": target["id"],
            "toString": target["name"],
        }
        items = [item]
        if target["statusCategory"]["key"] == "done":
            _, text = self._now_text()
            issue.fields["resolutiondate"] = text
        self.record_change(issue, items)
        return issue

    # ---- links -----------------------------------------------------------------------------------------

    @route("POST", "/rest/api/{version}/issueLink")
    def issue_link(self, request: Request, version: str) -> Any:
        body = request.json()
        name = str((body.get("type") or {}).get("name", ""))
        inward = str((body.get("inwardIssue") or {}).get("key", ""))
        outward = str((body.get("outwardIssue") or {}).get("key", ""))
        with self.lock:
            self.link(name, inward, outward)
        return Response(201)

    def link(self, type_name: str, inward_key: str, outward_key: str) -> None:
        """`inward_key` <outward verb> `outward_key`: for Blocks, the inward issue blocks the outward one."""
        link_type = next((t for t in self.link_types if t["name"].casefold() == type_name.casefold()), None)
        if link_type is None:
            raise jira_error(404, f"No issue link type with name '{type_name}' found.")
        source, target = self._issue(inward_key), self._issue(outward_key)
        self._ids += 1
        link_id = str(self._ids)
        source.fields.setdefault("issuelinks", []).append(
            {"id": link_id, "type": link_type, "outwardIssue": {"id": target.id, "key": target.key}}
        )
        target.fields.setdefault("issuelinks", []).append(
            {"id": link_id, "type": link_type, "inwardIssue": {"id": source.id, "key": source.key}}
        )
        self.record_change(source, [_link_item(link_type["outward"], target.key)])
        self.record_change(target, [_link_item(link_type["inward"], source.key)])

    @route("GET", "/rest/api/{version}/issue/{key}/remotelink")
    def remote_links(self, request: Request, version: str, key: str) -> Any:
        global_id = request.arg("globalId")
        with self.lock:
            links = self._issue(key).remote_links
            if global_id is None:
                return links
            for link in links:
                if link.get("globalId") == global_id:
                    return link
        raise jira_error(404, "No remote link with that globalId.")

    @route("POST", "/rest/api/{version}/issue/{key}/remotelink")
    def remote_link_upsert(self, request: Request, version: str, key: str) -> Any:
        """Create a remote link, or update the one with the request's `globalId`.

        An update replaces the link's content: what the request leaves out is cleared, as documented.
        Adding or removing a link logs a `RemoteIssueLink` history item and bumps `updated`; so does an
        update that changes something. An update that changes nothing leaves the issue alone.
        """
        body = request.json()
        if not isinstance(body, dict):
            raise jira_error(400, "The request body must be an object.")
        link_object = body.get("object") or {}
        if not isinstance(link_object, dict) or not link_object.get("url") or not link_object.get("title"):
            raise HTTPError(400, {"errorMessages": [], "errors": {"object": "url and title are required"}})
        content = {k: v for k, v in body.items() if k not in ("id", "self") and v is not None}
        with self.lock:
            issue = self._issue(key)
            global_id = body.get("globalId")
            existing = next(
                (x for x in issue.remote_links if global_id and x.get("globalId") == global_id), None
            )
            if existing is not None:
                before = {k: v for k, v in existing.items() if k not in ("id", "self")}
                if before != content:
                    kept = {"id": existing["id"], "self": existing["self"]}
                    existing.clear()
                    existing.update(kept | content)
                    self.record_change(issue, [_remote_link_item(existing, removed=False)])
                return Response(200, {"id": existing["id"], "self": existing["self"]})
            self._ids += 1
            link: dict[str, Any] = {
                "id": self._ids,
                "self": f"{SITE}/rest/api/{version}/issue/{issue.key}/remotelink/{self._ids}",
                **content,
            }
            issue.remote_links.append(link)
            self.record_change(issue, [_remote_link_item(link, removed=False)])
        # Cloud answers 201 for a new link (its document lists 200 and 201); the Data Center document
        # lists only 200 ("Returns a link to the created/updated remote issue link").
        return Response(201 if self.flavour == "cloud" else 200, {"id": link["id"], "self": link["self"]})

    @route("DELETE", "/rest/api/{version}/issue/{key}/remotelink/{link_id}")
    def remote_link_delete(self, request: Request, version: str, key: str, link_id: str) -> Any:
        with self.lock:
            issue = self._issue(key)
            self._remove_links(issue, [x for x in issue.remote_links if str(x["id"]) == link_id], "id")
        return Response(204)

    @route("DELETE", "/rest/api/{version}/issue/{key}/remotelink")
    def remote_link_delete_global(self, request: Request, version: str, key: str) -> Any:
        global_id = request.arg("globalId")
        if not global_id:
            raise jira_error(400, "globalId is required.")
        with self.lock:
            issue = self._issue(key)
            self._remove_links(
                issue, [x for x in issue.remote_links if x.get("globalId") == global_id], "globalId"
            )
        return Response(204)

    def _remove_links(self, issue: Issue, doomed: list[dict[str, Any]], by: str) -> None:
        if not doomed:
            raise jira_error(404, f"No remote link with that {by}.")
        issue.remote_links = [x for x in issue.remote_links if all(x is not d for d in doomed)]
        self.record_change(issue, [_remote_link_item(link, removed=True) for link in doomed])

    # ---- comments ----------------------------------------------------------------------------------------

    @route("GET", "/rest/api/{version}/issue/{key}/comment")
    def comments_page(self, request: Request, version: str, key: str) -> Any:
        """getComments: a page of the issue's comments, oldest first (`orderBy=-created`: newest first)."""
        start = request.int_arg("startAt", 0)
        size = request.int_arg("maxResults", 50, low=1, high=5000)
        with self.lock:
            issue = self._issue(key)
            ordered = list(issue.comments)
            if request.arg("orderBy") in ("-created", "-created_date"):
                ordered.reverse()
            page = [self._comment_body(c, version) for c in ordered[start : start + size]]
        return {"startAt": start, "maxResults": size, "total": len(ordered), "comments": page}

    @route("POST", "/rest/api/{version}/issue/{key}/comment")
    def comment_add(self, request: Request, version: str, key: str) -> Any:
        """addComment: REST v3 takes the body as an ADF document, REST v2 as a string; 201 either way."""
        body = request.json()
        text = _comment_text(body.get("body") if isinstance(body, dict) else None, version)
        if text is None:
            errors = {"comment": "Comment body can not be empty!"}
            raise HTTPError(400, {"errorMessages": [], "errors": errors})
        with self.lock:
            issue = self._issue(key)
            _, stamp = self._now_text()
            self._ids += 1
            comment = {"id": str(self._ids), "text": text, "author": self._author(), "created": stamp}
            issue.comments.append(comment)
            self.record_change(issue, [])
            return Response(201, self._comment_body(comment, version))

    @route("DELETE", "/rest/api/{version}/issue/{key}/comment/{comment_id}")
    def comment_delete(self, request: Request, version: str, key: str, comment_id: str) -> Any:
        with self.lock:
            issue = self._issue(key)
            kept = [c for c in issue.comments if c["id"] != comment_id]
            if len(kept) == len(issue.comments):
                raise jira_error(404, "Can not find a comment for the id.")
            issue.comments = kept
            self.record_change(issue, [])
        return Response(204)

    def _comment_body(self, comment: dict[str, Any], version: str) -> dict[str, Any]:
        text = comment["text"]
        return {
            "self": f"{SITE}/rest/api/{version}/issue/comment/{comment['id']}",
            "id": comment["id"],
            "author": comment["author"],
            "updateAuthor": comment["author"],
            "body": _comment_adf(text) if version == "3" else text,
            "created": comment["created"],
            "updated": comment["created"],
        }

    # ---- agile -------------------------------------------------------------------------------------------

    @route("GET", "/rest/agile/1.0/board")
    def boards(self, request: Request) -> Any:
        boards: list[dict[str, Any]] = [
            {
                "id": index + 1,
                "self": f"{SITE}/rest/agile/1.0/board/{index + 1}",
                "name": f"{key} board",
                "type": "scrum",
                "location": {"projectKey": key, "projectId": _int_id(p.get("id")), "name": p.get("name")},
            }
            for index, (key, p) in enumerate(sorted(self.projects.items()))
        ]
        wanted = request.arg("projectKeyOrId")
        if wanted:
            boards = [
                b for b in boards if wanted in (b["location"]["projectKey"], str(b["location"]["projectId"]))
            ]
        start = request.int_arg("startAt", 0)
        size = request.int_arg("maxResults", 50, low=1, high=50)
        page = boards[start : start + size]
        return {
            "maxResults": size,
            "startAt": start,
            "total": len(boards),
            "isLast": start + size >= len(boards),
            "values": page,
        }

    @route("PUT", "/rest/agile/1.0/issue/rank")
    def rank(self, request: Request) -> Any:
        """Move up to 50 issues, in the order given, just before or just after another issue.

        As with LexoRank, only the moved issues get new ranks (between the anchor and its neighbour); an
        issue that cannot be moved (unknown, or the anchor itself) is reported in a 207 and the rest move.
        """
        body = request.json()
        if not isinstance(body, dict):
            raise jira_error(400, "The request body must be an object.")
        keys = [str(k) for k in body.get("issues") or []]
        before, after = body.get("rankBeforeIssue"), body.get("rankAfterIssue")
        if not keys or len(keys) > 50:
            raise jira_error(400, "Between 1 and 50 issues can be ranked at once.")
        if bool(before) == bool(after):
            raise jira_error(400, "Give exactly one of rankBeforeIssue or rankAfterIssue.")
        field_number = body.get("rankCustomFieldId")
        if field_number is not None and f"customfield_{field_number}" != RANK_FIELD:
            raise jira_error(400, f"The custom field {field_number} is not a rank field.")
        with self.lock:
            anchor = self.issues.get(self.by_id.get(str(before or after), str(before or after).upper()))
            if anchor is None:
                raise jira_error(400, f"Issue {before or after} does not exist or you cannot see it.")
            return self._rank(keys, anchor, before=bool(before))

    def _rank(self, keys: list[str], anchor: Issue, *, before: bool) -> Response:
        entries, movable = [], []
        for key in keys:
            target = self.issues.get(self.by_id.get(key, key.upper()))
            if target is None:
                entries.append(
                    {"issueId": 0, "issueKey": key, "status": 404, "errors": ["Issue does not exist"]}
                )
                continue
            entry: dict[str, Any] = {"issueId": int(target.id), "issueKey": target.key, "status": 200}
            if target is anchor:
                entry.update(status=400, errors=["Cannot rank an issue relative to itself."])
            elif target not in movable:
                movable.append(target)
            entries.append(entry)
        if movable:
            moving = {id(i) for i in movable}
            ordered = sorted((i for i in self.issues.values() if id(i) not in moving), key=lambda i: i.rank)
            position = ordered.index(anchor) + (0 if before else 1)
            low = ordered[position - 1].rank if position > 0 else None
            high = ordered[position].rank if position < len(ordered) else None
            for item, rank in zip(movable, lexoranks_between(low, high, len(movable)), strict=True):
                previous, item.rank = item.rank, rank
                self._note_rank(rank)
                # Jira logs a move as "Ranked higher" or "Ranked lower" on the Rank field.
                moved = "Ranked higher" if rank < previous else "Ranked lower"
                self.record_change(item, [_history_item(RANK_FIELD, "", "", "Rank") | {"toString": moved}])
        if any(entry["status"] != 200 for entry in entries):
            return Response(207, {"entries": entries})
        return Response(204)

    # ---- control API ---------------------------------------------------------------------------------

    def dump_state(self) -> dict[str, Any]:
        return {
            "flavour": self.flavour,
            "timeZone": self.zone.key,
            "emails": self.emails,
            "bulk_tasks": len(self.bulk_tasks),
            "projects": list(self.projects.values()),
            "statuses": list(self.statuses.values()),
            "custom_fields": list(self.custom_fields.values()),
            "issues": [
                {
                    "id": i.id,
                    "key": i.key,
                    "fields": i.fields,
                    "histories": len(i.histories),
                    "remote_links": i.remote_links,
                    "rank": i.rank,
                }
                for i in sorted(self.issues.values(), key=lambda i: i.sort_key("key"))
            ],
        }

    def edit(self, change: dict[str, Any]) -> Any:
        op = change.get("op")
        if op == "create_issue":
            fields = {
                "project": {"key": change["project"]},
                "issuetype": {"name": change.get("type", "Task")},
                "summary": change.get("summary", "New issue"),
                **(change.get("fields") or {}),
            }
            issue = self.create_issue(fields, status=change.get("status"))
            return {"id": issue.id, "key": issue.key}
        if op == "transition":
            issue = self.transition(change["key"], str(change["status"]))
            return {"key": issue.key, "status": issue.fields["status"]["name"]}
        if op == "update":
            issue = self._issue(change["key"])
            self.record_change(
                issue, self.apply_update(issue, change.get("fields") or {}, change.get("update") or {})
            )
            return {"key": issue.key}
        if op == "delete":
            self.delete_issue(change["key"])
            return {"key": change["key"]}
        if op == "link":
            self.link(change.get("type", "Blocks"), change["blocker"], change["blocked"])
            return {"ok": True}
        if op == "add_custom_field":
            return {"id": self.add_custom_field(change["name"], change.get("kind", "number"))}
        if op == "hide_field":  # take a field off the edit screen: edits setting it become 400s
            with self.lock:
                self.off_screen.add(str(change["field"]))
            return {"field": change["field"]}
        if op == "add_remote_link":  # a link a user (or another app) made
            with self.lock:
                issue = self._issue(change["key"])
                self._ids += 1
                link = {
                    "id": self._ids,
                    "self": f"{SITE}/rest/api/2/issue/{issue.key}/remotelink/{self._ids}",
                }
                link |= {k: v for k, v in change.items() if k in ("globalId", "object", "application")}
                issue.remote_links.append(link)
                self.record_change(issue, [_remote_link_item(link, removed=False)])
            return {"id": link["id"]}
        if op == "set_permissions":  # the account's grants, site-wide or in one project
            with self.lock:
                self.grants.set(change.get("project"), [str(k) for k in change.get("permissions") or []])
            return {"ok": True}
        if op == "refuse_in_bulk":  # bulk edits fail for this issue (listed in the task's failures)
            with self.lock:
                self.bulk_refused.add(self._issue(str(change["key"])).key)
            return {"ok": True}
        if op == "set_watchers":
            with self.lock:
                self._issue(str(change["key"])).fields["watches"] = {"watchCount": int(change["count"]),
                                                                     "isWatching": False}  # fmt: skip
            return {"ok": True}
        if op == "set_time_zone":
            try:
                self.zone = ZoneInfo(change["timeZone"])
            except ZoneInfoNotFoundError:
                raise HTTPError(400, {"error": f"unknown time zone {change['timeZone']!r}"}) from None
            self._changed()
            return {"timeZone": self.zone.key}
        raise HTTPError(
            400,
            {
                "error": f"unknown edit op {op!r}; one of create_issue, transition, update, "
                "delete, link, add_custom_field, hide_field, add_remote_link, set_permissions, "
                "refuse_in_bulk, set_watchers, set_time_zone"
            },
        )

    def malform(self, body: Any, rule: dict[str, Any]) -> Any:
        issues = body.get("issues") if isinstance(body, dict) else None
        if not issues:
            return body
        index = int(rule.get("index", 0)) % len(issues)
        broken = dict(issues[index])
        target = rule.get("field", "fields")
        if target == "fields":
            broken["fields"] = "not an object"
        else:
            broken["fields"] = {**broken.get("fields", {}), target: {"unexpected": ["shape"]}}
        issues[index] = broken
        return body


# ---- module helpers -----------------------------------------------------------------------------------


def _project_key(issue: Issue) -> str | None:
    project = issue.fields.get("project")
    return str(project["key"]) if isinstance(project, dict) and project.get("key") else None


def _rank_digits(rank: str | None) -> str:
    """A LexoRank's digits (`0|i000db:x` -> `i000dbx`); None is the bottom of the bucket."""
    if not rank:
        return ""
    body = rank.partition("|")[2] if "|" in rank else rank
    whole, _, rest = body.partition(":")
    return whole.ljust(_RANK_WIDTH, "0") + rest


def _rank_text(digits: str) -> str:
    whole, rest = digits[:_RANK_WIDTH], digits[_RANK_WIDTH:].rstrip("0")
    return f"0|{whole}:{rest}"


def _rank_int(digits: str, width: int) -> int:
    value = 0
    for ch in digits.ljust(width, "0")[:width]:
        value = value * 36 + _DIGITS.index(ch)
    return value


def _rank_from_int(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 36)
        chars.append(_DIGITS[digit])
    return "".join(reversed(chars))


def lexoranks_between(low: str | None, high: str | None, count: int) -> list[str]:
    """`count` LexoRanks strictly between `low` and `high` (None: either end of the bucket), ascending.

    Like Jira's LexoRank, the ranks of the other issues are left alone: the new ones take as many extra
    digits after the `:` as the gap needs, evenly spread.
    """
    lo, hi = _rank_digits(low), _rank_digits(high)
    width = max(len(lo), len(hi), _RANK_WIDTH)
    while True:
        bottom = _rank_int(lo, width)
        top = _rank_int(hi, width) if hi else 36**width
        if top - bottom > count:
            gap = top - bottom
            return [
                _rank_text(_rank_from_int(bottom + gap * (i + 1) // (count + 1), width)) for i in range(count)
            ]
        width += 1


def lexorank_after(rank: str | None) -> str:
    """The rank of an issue created last: a fixed step below the top when there is room, else between."""
    digits = _rank_digits(rank)
    whole = _rank_int(digits[:_RANK_WIDTH], _RANK_WIDTH) if digits else 36**5 - _RANK_STEP
    if whole + _RANK_STEP < 36**_RANK_WIDTH:
        return _rank_text(_rank_from_int(whole + _RANK_STEP, _RANK_WIDTH))
    return lexoranks_between(rank, None, 1)[0]


def _issue_type(raw: dict[str, Any]) -> dict[str, Any]:
    name = str(raw.get("name", "Task"))
    return {
        "self": f"{SITE}/rest/api/2/issuetype/{raw.get('id')}",
        "id": str(raw.get("id")),
        "name": name,
        "subtask": bool(raw.get("subtask", False)),
        "hierarchyLevel": 1 if name.casefold() == "epic" else int(raw.get("hierarchyLevel", 0)),
    }


def _int_id(value: Any) -> Any:
    """A numeric id as the number Jira sends where its documents type the id as an integer."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _iso_day(value: Any) -> bool:
    """A date picker's value as the REST API takes and gives it: a day, `YYYY-MM-DD`."""
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _guess_field_name(field_id: str) -> str:
    return f"Custom field ({field_id.removeprefix('customfield_')})"


def _schema_type(value: Any) -> str:
    if isinstance(value, bool):
        return "any"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "option"
    return "string"


def _field_list(value: Any, default: list[str]) -> list[str]:
    if value is None:
        return default
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()] or default


def _select_fields(fields: dict[str, Any], wanted: list[str]) -> dict[str, Any] | None:
    if wanted in (["id"], ["key"], ["id", "key"], ["key", "id"]):
        return None
    include_all = "*all" in wanted or "*navigable" in wanted
    excluded = {w[1:] for w in wanted if w.startswith("-")}
    named = {w for w in wanted if not w.startswith(("*", "-"))}
    return {k: v for k, v in fields.items() if (include_all or k in named) and k not in excluded}


def _expands(expand: Any, what: str) -> bool:
    if not expand:
        return False
    parts = expand if isinstance(expand, list) else str(expand).split(",")
    return what in {str(p).strip() for p in parts}


def _bounded_int(value: Any, default: int, low: int, high: int | None, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise jira_error(400, f"'{name}' must be a number.") from None
    if number < low:
        raise jira_error(400, f"'{name}' must be at least {low}.")
    return min(number, high) if high is not None else number


def _adf(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    paragraph = {"type": "paragraph", "content": [{"type": "text", "text": value}]}
    return {"type": "doc", "version": 1, "content": [paragraph]}


def _comment_text(body: Any, version: str) -> str | None:
    """A comment's text from its request body: an ADF document through REST v3, a string through v2."""
    if version != "3":
        return body if isinstance(body, str) and body.strip() else None
    if not isinstance(body, dict) or body.get("type") != "doc":
        return None
    lines = []
    for block in body.get("content") or []:
        parts = block.get("content") or [] if isinstance(block, dict) else []
        lines.append("".join(str(p.get("text") or "") for p in parts if isinstance(p, dict)))
    text = "\n\n".join(lines)  # one paragraph each, as `_comment_adf` shows them
    return text if text.strip() else None


def _comment_adf(text: str) -> dict[str, Any]:
    """A comment's text as REST v3 shows it: an ADF document, one paragraph per blank-line block."""
    blocks = [block for block in text.split("\n\n") if block]
    content = [{"type": "paragraph", "content": [{"type": "text", "text": block}]} for block in blocks]
    return {"type": "doc", "version": 1, "content": content}


def _apply_operations(current: Any, operations: Any, errors: dict[str, str], name: str) -> Any:
    if not isinstance(operations, list):
        errors[name] = "update operations must be a list"
        return current
    value = list(current) if isinstance(current, list) else current
    for operation in operations:
        if not isinstance(operation, dict) or len(operation) != 1:
            errors[name] = "each operation is one of add, remove or set"
            continue
        verb, argument = next(iter(operation.items()))
        if verb == "set":
            value = argument
        elif verb == "add":
            value = list(value or [])
            if argument not in value:
                value.append(argument)
        elif verb == "remove":
            value = [v for v in (value or []) if v != argument]
        else:
            errors[name] = f"unsupported operation {verb!r}"
    return value


def _display(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return " ".join(_display(v) or "" for v in value)
    if isinstance(value, dict):
        return str(value.get("name") or value.get("key") or value.get("value") or value.get("id") or "")
    return str(value)


def _history_item(name: str, before: Any, after: Any, label: str) -> dict[str, Any]:
    custom = name.startswith("customfield_")
    return {
        "field": label,
        "fieldtype": "custom" if custom else "jira",
        "fieldId": name,
        "from": _display(before) if not isinstance(before, list) else None,
        "fromString": _display(before),
        "to": _display(after) if not isinstance(after, list) else None,
        "toString": _display(after),
    }


def _remote_link_item(link: dict[str, Any], *, removed: bool) -> dict[str, Any]:
    title = str((link.get("object") or {}).get("title") or "")
    text = f'This issue links to "{title}"'
    link_id = str(link.get("id"))
    return {
        "field": "RemoteIssueLink",
        "fieldtype": "jira",
        "from": link_id if removed else None,
        "fromString": text if removed else None,
        "to": None if removed else link_id,
        "toString": None if removed else text,
    }


def _link_item(verb: str, other: str) -> dict[str, Any]:
    return {
        "field": "Link",
        "fieldtype": "jira",
        "from": None,
        "fromString": None,
        "to": other,
        "toString": f"This issue {verb} {other}",
    }
