"""The field catalog (/field): system fields plus custom fields of every common type."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

CF = "com.atlassian.jira.plugin.system.customfieldtypes:"


@dataclass(frozen=True)
class FieldDef:
    id: str
    name: str
    schema: Optional[dict[str, Any]]
    navigable: bool = True
    orderable: bool = True
    searchable: bool = True
    #: how the value is produced: a system field name or a custom kind (see issues.py)
    kind: str = ""

    @property
    def custom(self) -> bool:
        return self.id.startswith("customfield_")

    def record(self) -> dict[str, Any]:
        """The /field entry."""
        record: dict[str, Any] = {"id": self.id, "key": self.id, "name": self.name, "custom": self.custom,
                                  "orderable": self.orderable, "navigable": self.navigable,
                                  "searchable": self.searchable}
        if self.custom:
            number = int(self.id.split("_")[1])
            record["untranslatedName"] = self.name
            record["clauseNames"] = [f"cf[{number}]", self.name]
        else:
            record["clauseNames"] = [self.id] if self.searchable else []
        if self.schema is not None:
            record["schema"] = self.schema
        return record


def _system(field_id: str, name: str, kind: Optional[str], items: Optional[str] = None, **flags: Any) -> FieldDef:
    schema = None
    if kind is not None:
        schema = {"type": kind}
        if items:
            schema["items"] = items
        schema["system"] = field_id
    return FieldDef(field_id, name, schema, kind=field_id, **flags)


def _custom(number: int, name: str, kind: str, type_key: str, items: Optional[str] = None) -> FieldDef:
    schema: dict[str, Any] = {"type": kind}
    if items:
        schema["items"] = items
    schema.update({"custom": type_key, "customId": number})
    return FieldDef(f"customfield_{number}", name, schema, kind=type_key.rsplit(":", 1)[-1])


SYSTEM_FIELDS: tuple[FieldDef, ...] = (
    _system("statuscategorychangedate", "Status Category Changed", "datetime"),
    _system("issuetype", "Issue Type", "issuetype"),
    _system("parent", "Parent", None),
    _system("timespent", "Time Spent", "number"),
    _system("project", "Project", "project"),
    _system("fixVersions", "Fix versions", "array", "version"),
    _system("aggregatetimespent", "Σ Time Spent", "number"),
    _system("resolution", "Resolution", "resolution"),
    _system("resolutiondate", "Resolved", "datetime"),
    _system("workratio", "Work Ratio", "number"),
    _system("watches", "Watchers", "watches"),
    _system("lastViewed", "Last Viewed", "datetime", orderable=False),
    _system("issuerestriction", "Restrict to", "issuerestriction"),
    _system("created", "Created", "datetime", orderable=False),
    _system("priority", "Priority", "priority"),
    _system("labels", "Labels", "array", "string"),
    _system("timeestimate", "Remaining Estimate", "number"),
    _system("aggregatetimeoriginalestimate", "Σ Original Estimate", "number"),
    _system("versions", "Affects versions", "array", "version"),
    _system("issuelinks", "Linked Issues", "array", "issuelinks"),
    _system("assignee", "Assignee", "user"),
    _system("updated", "Updated", "datetime", orderable=False),
    _system("status", "Status", "status"),
    _system("components", "Components", "array", "component"),
    _system("timeoriginalestimate", "Original estimate", "number"),
    _system("description", "Description", "string"),
    _system("timetracking", "Time tracking", "timetracking", navigable=False),
    _system("security", "Security Level", "securitylevel"),
    _system("attachment", "Attachment", "array", "attachment", navigable=False),
    _system("aggregatetimeestimate", "Σ Remaining Estimate", "number"),
    _system("summary", "Summary", "string"),
    _system("creator", "Creator", "user"),
    _system("subtasks", "Sub-tasks", "array", "issuelinks"),
    _system("reporter", "Reporter", "user"),
    _system("aggregateprogress", "Σ Progress", "progress"),
    _system("environment", "Environment", "string"),
    _system("duedate", "Due date", "date"),
    _system("progress", "Progress", "progress"),
    _system("votes", "Votes", "votes"),
    _system("comment", "Comment", "comments-page", navigable=False),
    _system("worklog", "Log Work", "array", "worklog", navigable=False),
)

#: fields that /field lists but an issue never carries in `fields`
LISTED_ONLY: tuple[FieldDef, ...] = (
    FieldDef("issuekey", "Key", None, orderable=False, kind="issuekey"),
    FieldDef("thumbnail", "Images", None, orderable=False, searchable=False, kind="thumbnail"),
)

SPRINT_FIELD = "customfield_10020"
STORY_POINTS_FIELD = "customfield_10016"
TEXTAREA_FIELDS = frozenset({"customfield_10038"})  # rich text: ADF in v3

STANDARD_CUSTOM_FIELDS: tuple[FieldDef, ...] = (
    _custom(10016, "Story point estimate", "number", "com.pyxis.greenhopper.jira:jsw-story-points"),
    _custom(10019, "Rank", "any", "com.pyxis.greenhopper.jira:gh-lexo-rank"),
    _custom(10020, "Sprint", "array", "com.pyxis.greenhopper.jira:gh-sprint", items="json"),
    _custom(10028, "Story Points", "number", CF + "float"),
    _custom(10030, "Budget (EUR)", "number", CF + "float"),
    _custom(10031, "Go-live", "datetime", CF + "datetime"),
    _custom(10032, "Target date", "date", CF + "datepicker"),
    _custom(10033, "Environment tier", "option", CF + "select"),
    _custom(10034, "Platforms", "array", CF + "multiselect", items="option"),
    _custom(10035, "Reviewer", "user", CF + "userpicker"),
    _custom(10036, "Stakeholders", "array", CF + "multiuserpicker", items="user"),
    _custom(10037, "Tags", "array", CF + "labels", items="string"),
    _custom(10038, "Release notes", "string", CF + "textarea"),
    _custom(10039, "Customer name", "string", CF + "textfield"),
    _custom(10040, "Spec link", "string", CF + "url"),
    _custom(10041, "Region / Site", "option-with-child", CF + "cascadingselect"),
)

_EXTRA_KINDS = (("number", CF + "float"), ("string", CF + "textfield"), ("option", CF + "select"),
                ("datetime", CF + "datetime"))

#: options of the select-like custom fields: field number -> option values
SELECT_OPTIONS = {
    10033: ("Production", "Staging", "Development", "Sandbox"),
    10034: ("iOS", "Android", "Web", "Desktop", "API"),
    10041: ("Europe", "Americas", "Asia-Pacific"),
}
CASCADE_CHILDREN = {"Europe": ("Berlin", "Dublin", "Zürich"), "Americas": ("San Francisco", "São Paulo"),
                    "Asia-Pacific": ("Sydney", "東京")}


def build_catalog(extra_custom_fields: int) -> list[FieldDef]:
    """Every field of the site, in /field order, including `extra_custom_fields` generic ones."""
    extras = []
    for n in range(extra_custom_fields):
        kind, type_key = _EXTRA_KINDS[n % len(_EXTRA_KINDS)]
        extras.append(_custom(10100 + n, f"Extra field {n + 1}", kind, type_key))
    return list(SYSTEM_FIELDS) + list(STANDARD_CUSTOM_FIELDS) + extras


def option_id(field_number: int, index: int, child: int = -1) -> str:
    return str(field_number * 10 + index if child < 0 else field_number * 100 + index * 10 + child)
