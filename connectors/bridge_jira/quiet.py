"""Quiet edits in Jira: who may be spared the notification emails, and Cloud's bulk edit.

Jira emails every watcher of an issue on each edit, unless the edit says `notifyUsers=false`, which only
an account with Administer Jira or Administer Projects may say: Cloud ignores the flag otherwise, Data
Center refuses the edit (403). So the bridge asks first, once per configured project and cycle (`GET
mypermissions?projectKey=K&permissions=ADMINISTER,ADMINISTER_PROJECTS,BULK_CHANGE`), and sends the flag
only where it counts (`Permissions`).

On Cloud, writes giving many issues the same value (a milestone's tasks taking its rank, a label added to
many issues) go in one bulk edit (`POST /rest/api/3/bulk/issues/fields`, up to 1,000 issues, with
`sendBulkNotification: false`), which needs the global Bulk Change permission. It runs as a task the bridge
polls (`GET /rest/api/3/bulk/queue/{taskId}`) until it completes, up to ten tasks at once when they
share no issue (`bulk_waves`); the task lists the issues it edited and those it failed for
(`task_outcomes`). `bulk_groups` picks the writes a bulk edit can carry: label adds and removes, and
number or single-line text fields set to a value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.domain import FieldWrite, WriteKind
from bridge.errors import AuthError, BridgeError
from bridge.http import redact

log = logging.getLogger(__name__)

BULK_PATH = "/rest/api/3/bulk/issues/fields"
QUEUE_PATH = "/rest/api/3/bulk/queue/{}"
BULK_LIMIT = 1000
BULK_MIN = 4
"""Fewest issues worth a bulk edit when single edits are quiet too: a bulk edit costs a submission and at
least one poll."""
WAVE = 10
"""Bulk edit tasks the bridge has running at once."""
SILENCING = ("ADMINISTER", "ADMINISTER_PROJECTS")
ASKED = ",".join((*SILENCING, "BULK_CHANGE"))
TEXT_FIELD = "com.atlassian.jira.plugin.system.customfieldtypes:textfield"


@dataclass(frozen=True)
class Permissions:
    """What the account may do quietly: the projects where edits may say `notifyUsers=false`, of all
    the configured ones, and whether it may bulk edit (Cloud)."""

    silent: frozenset[str]
    projects: frozenset[str]
    bulk: bool

    @property
    def loud(self) -> frozenset[str]:
        """The configured projects whose watchers a single edit emails."""
        return self.projects - self.silent

    @property
    def notify_flag(self) -> bool:
        """Whether single edits carry `notifyUsers=false`: where some project allows it (in a project
        that does not, Cloud ignores it and Data Center answers 403, and the edit is sent again
        without it)."""
        return bool(self.silent)


def ask_permissions(
    tracker: str, projects: Sequence[str], get: Callable[[str, Mapping[str, Any]], Any], cloud: bool
) -> Permissions:
    """One `mypermissions` request per project; a project Jira will not answer for counts as loud."""
    silent: set[str] = set()
    bulk = False
    for project in projects:
        try:
            answer = get("mypermissions", {"projectKey": project, "permissions": ASKED})
        except AuthError:
            raise
        except BridgeError as exc:
            log.warning("%s: could not read the account's permissions in %s (%s); its edits are sent "
                        "without notifyUsers=false", tracker, project, redact(str(exc)))  # fmt: skip
            continue
        granted = _granted(answer)
        if granted & set(SILENCING):
            silent.add(project)
        bulk = bulk or "BULK_CHANGE" in granted
    permissions = Permissions(frozenset(silent), frozenset(projects), bulk and cloud)
    if permissions.loud:
        loud = ", ".join(sorted(permissions.loud))
        log.warning("%s: the account may not turn off notifications in %s (it needs Administer Projects): "
                    "each edit there emails the issue's watchers%s", tracker, loud,
                    ", except bulk edits" if permissions.bulk else "")  # fmt: skip
    return permissions


def _granted(answer: Any) -> set[str]:
    table = answer.get("permissions") if isinstance(answer, dict) else None
    if not isinstance(table, dict):
        return set()
    return {
        str(key) for key, entry in table.items() if isinstance(entry, dict) and entry.get("havePermission")
    }


@dataclass
class BulkEdit:
    """One bulk edit: the same change on many issues, and the writes (index, write) it carries."""

    action: str
    """The field id (`labels` for labels)."""
    input: dict[str, Any]
    """`editedFieldsInput`."""
    writes: list[tuple[int, FieldWrite]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {
            "selectedActions": [self.action],
            "selectedIssueIdsOrKeys": [w.item.remote_id for _, w in self.writes],
            "editedFieldsInput": self.input,
            "sendBulkNotification": False,
        }


def bulk_input(write: FieldWrite, field_id: str, kind: str | None) -> dict[str, Any] | None:
    """The `editedFieldsInput` giving one issue `write`, or None when a bulk edit cannot carry it.

    `kind` is the field's: `number`, `text` (a single-line text field) or None (anything else)."""
    if write.kind in (WriteKind.LABEL_ADD, WriteKind.LABEL_REMOVE):
        option = "ADD" if write.kind is WriteKind.LABEL_ADD else "REMOVE"
        entry = {
            "fieldId": "labels",
            "bulkEditMultiSelectFieldOption": option,
            "labels": [{"name": write.field}],
        }
        return {"labelsFields": [entry]}
    if write.kind is not WriteKind.FIELD or write.value is None:
        return None
    if kind == "number" and isinstance(write.value, int | float) and not isinstance(write.value, bool):
        return {"clearableNumberFields": [{"fieldId": field_id, "value": write.value}]}
    if kind == "text" and isinstance(write.value, str) and write.value:
        return {"singleLineTextFields": [{"fieldId": field_id, "text": write.value}]}
    return None


def bulk_groups(
    writes: Sequence[tuple[int, FieldWrite]],
    field_of: Callable[[FieldWrite], tuple[str, str | None]],
    smallest: int,
) -> tuple[list[BulkEdit], list[tuple[int, FieldWrite]]]:
    """The bulk edits for the writes giving at least `smallest` issues the same change (at most 1,000
    issues each), and the writes left for single edits."""
    groups: dict[str, BulkEdit] = {}
    single: list[tuple[int, FieldWrite]] = []
    for index, write in writes:
        field_id, kind = field_of(write)
        edited = bulk_input(write, field_id, kind)
        if edited is None:
            single.append((index, write))
            continue
        key = json.dumps(edited, sort_keys=True)
        groups.setdefault(key, BulkEdit(field_id, edited)).writes.append((index, write))
    edits: list[BulkEdit] = []
    for group in groups.values():
        if len({w.item.remote_id for _, w in group.writes}) < smallest or _twice(group):
            single.extend(group.writes)
            continue
        for start in range(0, len(group.writes), BULK_LIMIT):
            edits.append(BulkEdit(group.action, group.input, group.writes[start : start + BULK_LIMIT]))
    single.sort(key=lambda pair: pair[0])
    return edits, single


def bulk_waves(edits: Sequence[BulkEdit]) -> list[list[BulkEdit]]:
    """The bulk edits in waves of at most `WAVE` that share no issue: a wave's tasks may run side by side
    (two tasks editing one issue at once could undo each other's change), the next waits for them."""
    waves: list[tuple[list[BulkEdit], set[str]]] = []
    for edit in edits:
        issues = {w.item.remote_id for _, w in edit.writes}
        for wave, seen in waves:
            if len(wave) < WAVE and not issues & seen:
                wave.append(edit)
                seen |= issues
                break
        else:
            waves.append(([edit], set(issues)))
    return [wave for wave, _ in waves]


def _twice(group: BulkEdit) -> bool:
    """The same issue twice in one group (the same write planned twice): single edits keep it simple."""
    return len({w.item.remote_id for _, w in group.writes}) != len(group.writes)


FINISHED = ("COMPLETE", "FAILED", "CANCELLED", "DEAD")


def task_outcomes(progress: Mapping[str, Any]) -> tuple[set[str], dict[str, str]]:
    """From a finished task's progress: the issue ids it edited, and those it failed for, with why."""
    done = {str(i) for i in progress.get("processedAccessibleIssues") or []}
    failures = progress.get("failedAccessibleIssues")
    failed: dict[str, str] = {}
    for issue, reasons in failures.items() if isinstance(failures, dict) else []:
        text = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) else str(reasons)
        failed[str(issue)] = f"the bulk edit failed for this issue: {text or 'no reason given'}"
    return done, failed
