"""Reading a Jira site incrementally: keyset pages by `updated`, complete histories, census.

The `issues` stream's cursor is a minute (UTC), stored as JSON. Each cycle asks for
`project in (...) AND updated >= "<cursor minus lag, in the API user's zone>" ORDER BY updated, key`.
After every page the cursor moves to the start of the minute of the page's last issue (never past the
cycle's start, the signpost), so it never lands inside a minute that was not finished, and whatever is
re-read is de-duplicated by id. The next page is a fresh query from that minute, which neither offset
paging (Data Center) nor a search token (Cloud) would survive if issues were edited mid-pull; only when a
single minute holds more issues than a page does paging continue within the query. Those (minute, page)
pairs are the keys of a `KeyPaginator`, so a server that hands out a page token twice stops the pull with
`PaginationLoop` instead of reading the same pages forever; the census and the changelog bulk fetch page
through the kit's paginators too.

Cloud embeds at most 100 histories per issue: the rest come from `changelog/bulkfetch`. Data Center
embeds them whole.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from bridge.domain import ItemState, Milestone, Ref, RemotePage, StatusCategory
from bridge.errors import UserError
from bridge.http import prefetched
from bridge.kit import KeyPaginator, TokenPaginator
from bridge.mapping import resolve_field
from bridge_jira.client import JiraSession, SearchPage
from bridge_jira.config import JiraTrackerConfig
from bridge_jira.mapping import HeldFields, JiraMapping, Mapped, configured_field, parse_time

log = logging.getLogger(__name__)

PAGE_SIZE = 100
CENSUS_PAGE_SIZE = 1000
BASE_FIELDS = (
    "summary", "status", "issuetype", "project", "labels", "components", "fixVersions", "parent",
    "issuelinks", "duedate", "created", "updated", "resolutiondate", "description", "watches",
)  # fmt: skip
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def floor_minute(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(second=0, microsecond=0)


def jql_time(when: datetime, session: JiraSession) -> str:
    """`when` as a JQL date in the API user's zone; an hour earlier where a DST fold makes it ambiguous."""
    local = when.astimezone(session.zone)
    other = local.replace(fold=1 - local.fold)
    if other.utcoffset() != local.utcoffset():
        local = (when - timedelta(hours=1)).astimezone(session.zone)
    return local.strftime("%Y/%m/%d %H:%M")


class JiraPuller:
    """The read side of one Jira site: the `issues` stream (and `versions`), and the census."""

    def __init__(self, name: str, config: JiraTrackerConfig, session: JiraSession) -> None:
        self.name = name
        self.config = config
        self.session = session
        with session.setup():
            fields = session.get("field")
        self.field_list: list[Any] = list(fields or [])
        """Every field the site has, as `GET field` describes it (the write side resolves from it too)."""
        names = {str(f["id"]): str(f.get("name", f["id"])) for f in fields if isinstance(f, dict)}
        self.field_names = {k: v for k, v in names.items() if k.startswith("customfield_")}
        self.mapping = self._mapping(list(names.items()))
        self.held: HeldFields | None = None
        """The fields holding what the bridge manages, stored with each page (None when the `write`
        table names a field the site lacks: the push says so)."""
        with suppress(UserError):
            self.held = HeldFields.resolve(name, config, self.field_list)
        self._epic_ids: dict[str, str] = {}

    def _mapping(self, fields: list[tuple[str, str]]) -> JiraMapping:
        """The mapping with the fields the config names resolved to ids."""
        config, okrs = self.config, self.config.okrs

        def resolved(where: str, wanted: str | None) -> str | None:
            return configured_field(self.name, where, wanted, fields)

        return JiraMapping(
            source=self.name,
            config=config,
            site=config.url,
            zone=self.session.zone,
            field_names=self.field_names,
            value_field=resolved("fields.value", config.fields.value),
            effort_field=resolved("fields.effort", config.fields.effort),
            due_field=resolved("fields.due", config.fields.due),
            okr_target_field=resolved("okrs.target_field", okrs.target_field if okrs else None),
            okr_current_field=resolved("okrs.current_field", okrs.current_field if okrs else None),
        )

    def _fields(self) -> list[str]:
        wanted = list(BASE_FIELDS)
        m = self.mapping
        extra = [m.value_field, m.effort_field, m.due_field, m.okr_target_field, m.okr_current_field]
        extra.append(self.config.tasks.epic_link_field)
        extra.extend(self.held.names() if self.held is not None else ())
        for rules in (self.config.teams, self.config.work_types, self.config.okr_rules):
            extra.extend(resolve_field(rule.field, self.field_names.items()) for rule in rules if rule.field)
        return wanted + sorted({f for f in extra if f})

    def base_jql(self) -> str:
        projects = ", ".join(json.dumps(p) for p in self.config.projects)
        clause = f"project in ({projects})"
        return f"{clause} AND ({self.config.jql})" if self.config.jql else clause

    # ---- the streams --------------------------------------------------------------------------------

    def streams(self) -> tuple[str, ...]:
        """`issues`, after `versions` when fix versions are the milestones."""
        return ("versions", "issues") if self.config.milestones.source == "fix_version" else ("issues",)

    def pull(self, stream: str, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        if stream == "issues":
            return self.pull_issues(cursor, signpost)
        if stream == "versions":
            return self.pull_versions()
        raise ValueError(f"the jira connector has no stream {stream!r}")

    # ---- the issues stream --------------------------------------------------------------------------

    def pull_issues(self, cursor: str | None, signpost: datetime) -> Iterator[RemotePage]:
        """Pages of changed issues, in three stages on their own threads: page k is stored (the caller)
        while page k+1 is mapped and page k+2 is on the wire. The mapping is Python, but the store's
        driver and the socket release the interpreter while they work, so the stages overlap."""
        self._read_site_statuses()
        stop = self.session.policy.stop_event
        raw = prefetched(self._raw_pages(cursor, signpost), stop_event=stop)
        return prefetched((self._page(*page) for page in raw), stop_event=stop)

    def _read_site_statuses(self) -> None:
        """Name every status the site has as it is named now (`GET status`, one setup read a cycle, before
        the search's threads start): the first page then carries them all, so a status no changed issue
        is in is named too, and a renamed one shows its new name without an issue moving."""
        with self.session.setup():
            statuses = self.session.get("status") or []
        for status in statuses:
            if isinstance(status, dict) and status.get("id") and status.get("name"):
                self.mapping.status_names[str(status["id"])] = str(status["name"])

    def _raw_pages(
        self, cursor: str | None, signpost: datetime
    ) -> Iterator[tuple[list[dict[str, Any]], str | None, int]]:
        """(new issues, the cursor after them, how many were re-read) for each page of the search."""
        minute = _cursor_minute(cursor)
        start = max(EPOCH, minute - self.config.lag) if minute is not None else None
        limit = floor_minute(signpost)
        seen: set[tuple[str, str]] = set()
        queries = KeyPaginator(
            f"{self.name}: changed issues", self._resume_at, start=_Resume(start, None), tracker=self.name
        )
        for _, page in queries.pages(self._search):
            issues = []
            for issue in page.issues:
                identity = _identity(issue)
                if identity not in seen:
                    seen.add(identity)
                    issues.append(issue)
            if page.last:
                # Everything updated before the signpost has been seen; the lag re-reads the rest.
                next_minute: datetime | None = limit
            else:
                last_updated = _last_updated(page.issues)
                next_minute = min(floor_minute(last_updated), limit) if last_updated else minute
            yield issues, _cursor_value(next_minute), len(page.issues) - len(issues)

    def _search(self, resume: _Resume | None) -> _IssuesPage:
        """One page of the changed issues, from `resume` (its minute, and its page within that query)."""
        start, token = resume if resume is not None else (None, None)
        since = f' AND updated >= "{jql_time(start, self.session)}"' if start else ""
        params = {"jql": f"{self.base_jql()}{since} ORDER BY updated ASC, key ASC", "maxResults": PAGE_SIZE,
                  "fields": ",".join(self._fields()), "expand": "changelog"}  # fmt: skip
        return _IssuesPage(start, self.session.search_page(params, token))

    def _resume_at(self, read: _IssuesPage) -> _Resume | None:
        """Where the query after `read` starts: a fresh query from the minute of the page's last issue;
        the next page of the same query when one minute holds more than a page; None at the end."""
        start, page = read
        if page.last:
            return None
        last_updated = _last_updated(page.issues)
        if last_updated is not None and (start is None or floor_minute(last_updated) > start):
            return _Resume(floor_minute(last_updated), None)
        if page.next:
            return _Resume(start, page.next)
        log.warning("%s: the server gave no next page; the lag window will catch up", self.name)
        return None

    def _page(self, issues: list[dict[str, Any]], cursor: str | None, reread: int) -> RemotePage:
        if self.session.cloud:
            self._complete_histories(issues)
        mapped = self.mapping.map_issues(issues)
        self._resolve_epic_links(mapped)
        for skipped in mapped.skipped:
            log.warning("%s: skipped issue %s: %s", self.name, skipped.key, skipped.reason)
        if reread:
            log.debug("%s: %d issues re-read at a page boundary", self.name, reread)
        return RemotePage(
            source=self.name,
            stream="issues",
            milestones=mapped.milestones,
            tasks=mapped.tasks,
            status_changes=mapped.changes,
            dependencies=mapped.dependencies,
            objectives=mapped.objectives,
            key_results=mapped.key_results,
            links=mapped.links,
            statuses=self.mapping.statuses(),
            skipped=mapped.skipped,
            cursor=cursor,
            held=self._held(issues),
            flow_facts=mapped.flow_facts,
        )

    def _held(self, issues: list[dict[str, Any]]) -> list[ItemState]:
        """What the issues hold of what the bridge manages (their remote links are not in a search)."""
        if self.held is None:
            return []
        found = []
        for issue in issues:
            issue_id = str(issue.get("id") or "")
            if issue_id.isdigit():
                found.append(self.held.state(Ref(self.name, issue_id), issue))
        return found

    def _complete_histories(self, issues: list[dict[str, Any]]) -> None:
        """Fetch what Cloud left out of the embedded changelog (it embeds the newest 100)."""
        wanted = {}
        for issue in issues:
            changelog = issue.get("changelog") if isinstance(issue, dict) else None
            if isinstance(changelog, dict) and int(changelog.get("total") or 0) > len(
                changelog.get("histories") or []
            ):
                wanted[str(issue["id"])] = changelog
        if not wanted:
            return
        fetched = self._changelogs(sorted(wanted))
        for issue_id, changelog in wanted.items():
            merged = {str(h.get("id")): h for h in changelog.get("histories") or []}
            merged.update(fetched.get(issue_id, {}))
            changelog["histories"] = list(merged.values())
            changelog["maxResults"] = changelog["total"] = len(merged)

    def _changelogs(self, issue_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Issue id -> history id -> history, whole, from `changelog/bulkfetch`."""
        body: dict[str, Any] = {"issueIdsOrKeys": issue_ids, "maxResults": 1000}
        fetched: dict[str, dict[str, Any]] = {issue_id: {} for issue_id in issue_ids}
        listing = TokenPaginator[dict[str, Any]](
            f"{self.name}: changelogs of {len(issue_ids)} issues",
            lambda page: page.get("nextPageToken"),
            tracker=self.name,
        )
        for page in listing.pages(lambda token: self.session.post("changelog/bulkfetch", _at(body, token))):
            for log_entry in page.get("issueChangeLogs") or []:
                bucket = fetched.setdefault(str(log_entry.get("issueId")), {})
                for history in log_entry.get("changeHistories") or []:
                    bucket[str(history.get("id"))] = history
        return fetched

    def _resolve_epic_links(self, mapped: Mapped) -> None:
        """Tasks name their epic by key (the Epic Link field); the store keys milestones by issue id."""
        for milestone in mapped.milestones:
            self._epic_ids[milestone.key] = milestone.remote_id
        resolved = []
        for task in mapped.tasks:
            if task.milestone_id and task.milestone_id.startswith("key:"):
                epic_key = task.milestone_id[4:]
                if epic_key not in self._epic_ids:
                    found = self.session.get(f"issue/{epic_key}", {"fields": "summary"})
                    self._epic_ids[epic_key] = str(found["id"])
                task = replace(task, milestone_id=self._epic_ids[epic_key])
            resolved.append(task)
        mapped.tasks = resolved

    # ---- fix versions as milestones -------------------------------------------------------------------

    def pull_versions(self) -> Iterator[RemotePage]:
        milestones = []
        for project in self.config.projects:
            for version in self.session.get(f"project/{project}/versions") or []:
                released = bool(version.get("released"))
                milestones.append(
                    Milestone(
                        source=self.name,
                        remote_id=f"version:{version['id']}",
                        key=str(version.get("name") or version["id"]),
                        title=str(version.get("name") or version["id"]),
                        team=self.config.team,
                        due=self.mapping._due(version.get("releaseDate")),
                        raw_status="released" if released else "unreleased",
                        category=StatusCategory.DONE if released else StatusCategory.IN_PROGRESS,
                        url=f"{self.config.url}/projects/{project}/versions/{version['id']}",
                    )
                )
        yield RemotePage(source=self.name, stream="versions", milestones=milestones)

    # ---- census ----------------------------------------------------------------------------------------

    def census(self) -> list[str]:
        """The ids of every issue the site still has (and of every fix version, when those are the
        milestones), for marking the rest deleted."""
        params = {
            "jql": self.base_jql() + " ORDER BY key ASC",
            "fields": "id",
            "maxResults": CENSUS_PAGE_SIZE,
        }
        pages = self.session.search(f"{self.name}: census of {self.base_jql()}", params)
        ids = [str(issue["id"]) for page in pages for issue in page.issues]
        if self.config.milestones.source == "fix_version":
            ids.extend(m.remote_id for page in self.pull_versions() for m in page.milestones)
        return ids


def _identity(issue: Any) -> tuple[str, str]:
    if not isinstance(issue, dict):
        return ("?", repr(issue)[:50])
    fields = issue.get("fields")
    updated = fields.get("updated") if isinstance(fields, dict) else None
    return (str(issue.get("id")), str(updated))


def _last_updated(issues: list[Any]) -> datetime | None:
    for issue in reversed(issues):
        fields = issue.get("fields") if isinstance(issue, dict) else None
        if isinstance(fields, dict):
            try:
                return parse_time(fields.get("updated"))
            except ValueError:
                continue
    return None


class _Resume(NamedTuple):
    """Where a query of the issues stream starts: the minute it reads from, and its page within."""

    start: datetime | None
    token: str | None


class _IssuesPage(NamedTuple):
    """A page of the issues stream, with the minute its query started from."""

    start: datetime | None
    search: SearchPage


def _at(body: dict[str, Any], token: str | None) -> dict[str, Any]:
    """`body` asking for the page at `token`."""
    return {**body, "nextPageToken": token} if token else body


def _cursor_minute(cursor: str | None) -> datetime | None:
    if not cursor:
        return None
    try:
        return datetime.fromisoformat(json.loads(cursor)["minute"]).astimezone(UTC)
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable Jira cursor %r: reading everything again", cursor)
        return None


def _cursor_value(minute: datetime | None) -> str | None:
    return json.dumps({"minute": minute.isoformat()}) if minute is not None else None
