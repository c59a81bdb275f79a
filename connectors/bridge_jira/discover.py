"""What a Jira site has that a mapping refers to: projects, statuses (id and name), issue types, labels and
custom fields (id, name, type), and each status's category (`extra["status_categories"]`)."""

from __future__ import annotations

from typing import Any

from bridge.connector import DiscoveredField, Discovery
from bridge.kit import OffsetPaginator
from bridge_jira.client import JiraSession

LABEL_SAMPLE = 1000


def discover(session: JiraSession) -> Discovery:
    projects = session.get("project") or []
    statuses = session.get("status") or []
    issue_types = session.get("issuetype") or []
    fields = session.get("field") or []
    return Discovery(
        containers=[(str(p.get("key")), str(p.get("name", p.get("key")))) for p in projects],
        statuses=sorted({(str(s["id"]), str(s.get("name", s["id"]))) for s in statuses}),
        item_types=sorted({str(t.get("name")) for t in issue_types}),
        labels=_labels(session, [str(p.get("key")) for p in projects]),
        fields=[
            DiscoveredField(str(f["id"]), str(f.get("name", f["id"])), _field_type(f))
            for f in fields
            if str(f.get("id", "")).startswith("customfield_")
        ],
        extra={
            "deployment": "cloud" if session.cloud else "data center",
            "time_zone": session.zone.key,
            "status_categories": _status_categories(statuses),
        },
    )


def _status_categories(statuses: list[dict[str, Any]]) -> dict[str, str]:
    """Status id -> Jira's status category key (new, indeterminate or done), where Jira gives one."""
    found = {}
    for status in statuses:
        category = (status.get("statusCategory") or {}).get("key")
        if status.get("id") is not None and category:
            found[str(status["id"])] = str(category)
    return dict(sorted(found.items()))


def _labels(session: JiraSession, projects: list[str]) -> list[str]:
    if session.cloud:
        listing = OffsetPaginator[dict[str, Any]](
            f"{session.name}: labels",
            lambda page: len(page.get("values") or []),
            lambda page, _: bool(page.get("isLast", True)),
            tracker=session.name,
        )
        pages = listing.pages(lambda start: session.get("label", {"startAt": start, "maxResults": 1000}))
        return sorted({str(label) for page in pages for label in page.get("values") or []})
    return _sampled_labels(session, projects) if projects else []


def _sampled_labels(session: JiraSession, projects: list[str]) -> list[str]:
    """Data Center has no label list: the labels of the most recently updated issues."""
    keys = ", ".join(f'"{p}"' for p in projects)
    jql = f"project in ({keys}) ORDER BY updated DESC"
    body = session.get("search", {"jql": jql, "fields": "labels", "maxResults": LABEL_SAMPLE})
    issues = body.get("issues") or []
    return sorted(
        {str(label) for issue in issues for label in (issue.get("fields") or {}).get("labels") or []}
    )


def _field_type(field: dict[str, Any]) -> str:
    schema = field.get("schema") or {}
    kind = str(schema.get("type", "unknown"))
    custom = str(schema.get("custom", ""))
    return f"{kind} ({custom.rsplit(':', 1)[-1]})" if custom else kind
