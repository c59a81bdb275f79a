"""What the Jira emulator needs to model quiet edits: permissions, bulk edit payloads, emails.

- `GET mypermissions` answers per project (`permissions_json`): the account's grants, set per project
  (or site-wide) through the control API, every key asked for reported with `havePermission`;
- `POST /rest/api/3/bulk/issues/fields` (Cloud) takes `selectedIssueIdsOrKeys` (1 to 1,000),
  `selectedActions` and `editedFieldsInput` (`clearableNumberFields`, `singleLineTextFields`,
  `labelsFields` are modelled); `bulk_changes` turns the input into the `fields` and `update` of one issue
  edit, so the edit itself is the same as a `PUT issue`'s;
- every edit that changes an issue sends one email to each of its watchers (`watches.watchCount`,
  1 when absent: the reporter) unless the request suppressed it (`notifyUsers=false` with the permission
  to, or `sendBulkNotification: false`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge_sandbox.messages import HTTPError

BULK_LIMIT = 1000
QUIET_PERMISSIONS = ("ADMINISTER", "ADMINISTER_PROJECTS")
"""Either lets an edit say `notifyUsers=false` (ADMINISTER is site-wide, ADMINISTER_PROJECTS per project)."""
ALL_PERMISSIONS = {
    "ADMINISTER": ("Administer Jira", "GLOBAL", "Create and administer projects, issue types, fields..."),
    "ADMINISTER_PROJECTS": ("Administer Projects", "PROJECT", "Ability to administer a project in Jira."),
    "BULK_CHANGE": ("Make bulk changes", "GLOBAL", "Modify collections of issues at once."),
    "BROWSE_PROJECTS": ("Browse Projects", "PROJECT", "Ability to browse projects and their issues."),
    "EDIT_ISSUES": ("Edit Issues", "PROJECT", "Ability to edit issues."),
}
GLOBAL_KEYS = {key for key, (_, kind, _) in ALL_PERMISSIONS.items() if kind == "GLOBAL"}


@dataclass
class Grants:
    """The API account's permissions: site-wide keys and, per project key, project keys."""

    site: set[str] = field(default_factory=lambda: set(ALL_PERMISSIONS))
    projects: dict[str, set[str]] = field(default_factory=dict)

    def has(self, key: str, project: str | None) -> bool:
        """Whether the account has `key`: a global key site-wide; a project key in `project`, or (no
        project) in any project, as Jira answers without a context."""
        if key in GLOBAL_KEYS:
            return key in self.site
        if project is None:
            return key in self.site or any(key in keys for keys in self.projects.values())
        return key in self.projects.get(project, self.site)

    def may_silence(self, project: str | None) -> bool:
        return any(self.has(key, project) for key in QUIET_PERMISSIONS)

    def set(self, project: str | None, keys: list[str]) -> None:
        """Grant exactly `keys`: site-wide (every project without its own grants too) or in one project."""
        unknown = [key for key in keys if key not in ALL_PERMISSIONS]
        if unknown:
            raise HTTPError(
                400, {"error": f"unknown permissions {unknown}; one of {sorted(ALL_PERMISSIONS)}"}
            )
        if project is None:
            self.site = set(keys)
        else:
            self.projects[project] = {key for key in keys if key not in GLOBAL_KEYS}

    def json(self, wanted: list[str], project: str | None) -> dict[str, Any]:
        permissions = {}
        for key in wanted or sorted(ALL_PERMISSIONS):
            if key not in ALL_PERMISSIONS:
                raise HTTPError(400, {"errorMessages": [f"Unrecognized permission key: {key}"], "errors": {}})
            name, kind, description = ALL_PERMISSIONS[key]
            permissions[key] = {"id": str(sorted(ALL_PERMISSIONS).index(key) + 10), "key": key,
                                "name": name, "type": kind, "description": description,
                                "havePermission": self.has(key, project)}  # fmt: skip
        return {"permissions": permissions}


@dataclass
class BulkTask:
    """One submitted bulk edit: done when submitted, reported RUNNING on its first poll as a queued task
    would be, then COMPLETE with the issues processed and those that failed."""

    task_id: str
    total: int
    processed: list[int] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)
    invalid: int = 0
    polls: int = 0

    def json(self, submitted_by: dict[str, Any]) -> dict[str, Any]:
        self.polls += 1
        body: dict[str, Any] = {
            "taskId": self.task_id,
            "submittedBy": submitted_by,
            "totalIssueCount": self.total,
        }
        if self.polls == 1:
            return body | {"status": "RUNNING", "progressPercent": 50}
        return body | {
            "status": "COMPLETE",
            "progressPercent": 100,
            "processedAccessibleIssues": self.processed,
            "failedAccessibleIssues": self.failed,
            "invalidOrInaccessibleIssueCount": self.invalid,
        }


def bulk_error(message: str) -> HTTPError:
    return HTTPError(400, {"errors": [{"message": message}]})


def bulk_request(body: Any) -> tuple[list[str], dict[str, Any], dict[str, Any], bool]:
    """The issues, the `fields` and `update` of the edit, and whether to notify, of a bulk edit body."""
    if not isinstance(body, dict):
        raise bulk_error("The request body must be an object.")
    issues = [str(i) for i in body.get("selectedIssueIdsOrKeys") or []]
    if not issues or len(issues) > BULK_LIMIT:
        raise bulk_error(f"Between 1 and {BULK_LIMIT} issues can be edited in one bulk edit.")
    actions = [str(a) for a in body.get("selectedActions") or []]
    fields, update = bulk_changes(body.get("editedFieldsInput"))
    edited = set(fields) | set(update)
    if set(actions) != edited:
        extra = sorted(edited - set(actions)) or sorted(set(actions) - edited)
        raise bulk_error(
            f"The following editedFieldInput values are not listed as selectedActions : {', '.join(extra)}"
        )
    return issues, fields, update, body.get("sendBulkNotification", True) is not False


def bulk_changes(edited: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """`editedFieldsInput` as the `fields` (set) and `update` (label operations) of an issue edit."""
    if not isinstance(edited, dict) or not edited:
        raise bulk_error("editedFieldsInput is required.")
    fields: dict[str, Any] = {}
    update: dict[str, Any] = {}
    for kind, entries in edited.items():
        if kind not in ("clearableNumberFields", "singleLineTextFields", "labelsFields"):
            raise bulk_error(f"The sandbox does not model bulk edits of {kind}.")
        for entry in entries if isinstance(entries, list) else []:
            field_id = str(entry.get("fieldId") or "") if isinstance(entry, dict) else ""
            if not field_id:
                raise bulk_error(f"Every entry of {kind} needs a fieldId.")
            if kind == "clearableNumberFields":
                fields[field_id] = entry.get("value")
            elif kind == "singleLineTextFields":
                fields[field_id] = entry.get("text")
            else:
                _labels(entry, field_id, fields, update)
    return fields, update


def _labels(entry: dict[str, Any], field_id: str, fields: dict[str, Any], update: dict[str, Any]) -> None:
    names = [str(label.get("name")) for label in entry.get("labels") or [] if isinstance(label, dict)]
    option = entry.get("bulkEditMultiSelectFieldOption")
    if option in ("ADD", "REMOVE"):
        update[field_id] = [{option.lower(): name} for name in names]
    elif option in ("REPLACE", "REMOVE_ALL"):
        fields[field_id] = names if option == "REPLACE" else []
    else:
        raise bulk_error("bulkEditMultiSelectFieldOption is one of ADD, REMOVE, REPLACE, REMOVE_ALL.")


def watchers(fields: dict[str, Any]) -> int:
    """How many people watch an issue (the reporter when nothing says)."""
    watches = fields.get("watches")
    count = watches.get("watchCount") if isinstance(watches, dict) else None
    return int(count) if isinstance(count, int) else 1
