"""The extraction scope's own checks: every wrong value is refused with a message naming the setting and the fix.

These need no Jira: the offline checks, the YAML file, field references resolved against a /field list (the
simulator's, served as data), and the masking hash itself.
"""
from __future__ import annotations

import hashlib
import hmac

import pytest

from jira_assets.scope import ExtractionScope, FieldPolicy, ScopeError, resolve_field
from jira_assets.simulator.fields import LISTED_ONLY, build_catalog

FIELDS = [f.record() for f in build_catalog(0)] + [f.record() for f in LISTED_ONLY]
SALT = "s" * 32


def problems_of(**kwargs) -> dict[str, str]:
    with pytest.raises(ScopeError) as caught:
        ExtractionScope(**kwargs).validate()
    return dict(caught.value.problems)


@pytest.mark.parametrize(
    "kwargs, setting, fix",
    [
        ({"projects": ("my project",)}, "projects", "use the key (e.g. ENG)"),
        ({"jql_filter": "   "}, "jql_filter", "remove it or write a JQL condition"),
        ({"jql_filter": "status = Open ORDER BY created"}, "jql_filter", "remove the ORDER BY clause"),
        ({"jql_filter": "(status = Open"}, "jql_filter", "close every '('"),
        ({"jql_filter": 'summary ~ "open'}, "jql_filter", "close every '\"'"),
        ({"include_fields": ("summary",), "exclude_fields": ("labels",)}, "include_fields", "not both"),
        ({"exclude_fields": ("",)}, "exclude_fields", "empty entry"),
        ({"mask_fields": ("labels",), "exclude_fields": ("labels",), "mask_salt": SALT}, "mask_fields",
         "remove it from one of the two"),
        ({"rename_fields": {"Story Points": "Story Points"}}, "rename_fields", "'story_points'"),
        ({"rename_fields": {"Story Points": "date"}}, "rename_fields", "reserved"),
        ({"rename_fields": {"Story Points": "points", "customfield_10016": "points"}}, "rename_fields",
         "give each its own name"),
        ({"mask_fields": ("assignee",)}, "mask_salt", "set JIRA_MASK_SALT"),
        ({"mask_users": True, "mask_salt": "short"}, "mask_salt", "shorter than 16"),
        ({"history_start": "01/02/2026"}, "history_start", "YYYY-MM-DD"),
        ({"history_start": "2999-01-01"}, "history_start", "in the future"),
    ],
)
def test_each_offline_problem_names_its_setting_and_the_fix(kwargs, setting, fix):
    found = problems_of(**kwargs)
    assert setting in found, found
    assert fix in found[setting]


def test_every_problem_is_reported_at_once_with_where_the_setting_comes_from():
    with pytest.raises(ScopeError) as caught:
        ExtractionScope(projects=("a b",), jql_filter="x ORDER BY y", mask_fields=("assignee",)).validate()
    text = str(caught.value)
    assert text.startswith("3 problems in the extraction scope")
    assert "projects (env JIRA_PROJECTS; scope file: projects):" in text
    assert "jql_filter (env JIRA_JQL_FILTER; scope file: jql):" in text
    assert "mask_salt (env JIRA_MASK_SALT):" in text


def test_a_valid_scope_passes_and_builds_its_jql():
    scope = ExtractionScope(projects=("OPS", "10001"), jql_filter='statusCategory != Done AND summary ~ "a (b"',
                            mask_fields=("assignee",), mask_salt=SALT).validate()
    assert scope.jql() == 'project in ("OPS", 10001) AND (statusCategory != Done AND summary ~ "a (b")'


def test_the_scope_file_is_read_and_environment_variables_override_it(tmp_path):
    path = tmp_path / "jira_scope.yaml"
    path.write_text(
        "projects: [OPS, WEB]\n"
        "jql: statusCategory != Done\n"
        "history_start: 2026-03-01\n"
        "fields:\n"
        "  exclude: [environment]\n"
        "  rename: {Story Points: points}\n"
        "  mask: [assignee, Customer name]\n"
    )
    scope = ExtractionScope.from_env({"JIRA_SCOPE_FILE": str(path), "JIRA_PROJECTS": "DEMO",
                                      "JIRA_MASK_SALT": SALT})
    assert scope.projects == ("DEMO",)  # the variable wins
    assert scope.jql_filter == "statusCategory != Done"
    assert scope.history_start == "2026-03-01"
    assert scope.exclude_fields == ("environment",)
    assert scope.rename_fields == {"Story Points": "points"}
    assert scope.mask_fields == ("assignee", "Customer name")
    scope.validate()


def test_an_unknown_key_in_the_scope_file_is_refused_with_a_suggestion(tmp_path):
    path = tmp_path / "jira_scope.yaml"
    path.write_text("project: [OPS]\nfields:\n  masks: [assignee]\n")
    with pytest.raises(ScopeError) as caught:
        ExtractionScope.from_env({"JIRA_SCOPE_FILE": str(path)})
    found = dict(caught.value.problems)
    assert "did you mean 'projects'" in found["jira_scope.yaml: project"]
    assert "known: include, exclude, rename, mask" in found["jira_scope.yaml: fields.masks"]


def test_a_missing_scope_file_names_the_variable():
    with pytest.raises(ScopeError, match="JIRA_SCOPE_FILE.*no file at '/nope.yaml'"):
        ExtractionScope.from_env({"JIRA_SCOPE_FILE": "/nope.yaml"})


def test_renames_from_the_environment_must_look_like_field_equals_column():
    with pytest.raises(ScopeError, match="JIRA_RENAME_FIELDS.*'Story Points' must look like 'field=column'"):
        ExtractionScope.from_env({"JIRA_RENAME_FIELDS": "Story Points"})
    scope = ExtractionScope.from_env({"JIRA_RENAME_FIELDS": "Story Points=points, cf[10039] = customer"})
    assert scope.rename_fields == {"Story Points": "points", "cf[10039]": "customer"}


@pytest.mark.parametrize("ref, field_id", [
    ("customfield_10039", "customfield_10039"),
    ("Customer name", "customfield_10039"),
    ("CUSTOMER NAME", "customfield_10039"),
    ("customer_name", "customfield_10039"),
    ("cf[10039]", "customfield_10039"),
    ("assignee", "assignee"),
    ("Assignee", "assignee"),
    ("Due date", "duedate"),
])
def test_fields_are_referenced_by_id_name_column_name_or_cf_number(ref, field_id):
    assert resolve_field(ref, FIELDS, "mask_fields") == field_id


def test_an_unknown_field_name_lists_close_matches():
    with pytest.raises(ScopeError) as caught:
        resolve_field("Custmer nam", FIELDS, "mask_fields")
    [(setting, message)] = caught.value.problems
    assert setting == "mask_fields"
    assert "no Jira field 'Custmer nam'; did you mean 'Customer name' (customfield_10039)" in message


def test_a_name_shared_by_two_fields_asks_for_the_id():
    fields = FIELDS + [{"id": "customfield_20000", "name": "Customer name", "custom": True}]
    with pytest.raises(ScopeError, match="names 2 fields \\(customfield_10039, customfield_20000\\); use the id"):
        resolve_field("customer name", fields, "exclude_fields")


@pytest.mark.parametrize("kwargs, setting, fix", [
    ({"exclude_fields": ("Updated",)}, "exclude_fields", "needed to partition and join"),
    ({"exclude_fields": ("comment",)}, "exclude_fields", "mask it instead"),
    ({"mask_fields": ("project",), "mask_salt": SALT}, "mask_fields", "cannot be masked"),
    ({"rename_fields": {"summary": "title"}}, "rename_fields", "rename custom fields only"),
    ({"rename_fields": {"assignee": "owner"}}, "rename_fields", "assignee_account_id, assignee_display_name"),
    ({"rename_fields": {"Story Points": "story_point_estimate"}}, "rename_fields",
     "two columns would be called 'story_point_estimate'"),
    ({"exclude_fields": ("Story Points",), "rename_fields": {"Story Points": "points"}}, "rename_fields",
     "is excluded, so it has no column"),
    ({"include_fields": ("Sumary",)}, "include_fields", "did you mean 'Summary' (summary)"),
])
def test_field_settings_that_cannot_work_on_this_site_name_the_setting(kwargs, setting, fix):
    with pytest.raises(ScopeError) as caught:
        FieldPolicy.resolve(ExtractionScope(**kwargs), FIELDS)
    found = dict(caught.value.problems)
    assert setting in found, found
    assert fix in found[setting]


def test_the_mask_is_an_hmac_sha256_of_every_scalar_keeping_the_values_shape():
    policy = FieldPolicy.resolve(ExtractionScope(mask_fields=("assignee",), mask_salt=SALT), FIELDS)

    def digest(text: str) -> str:
        return hmac.new(SALT.encode(), text.encode(), hashlib.sha256).hexdigest()

    user = {"accountId": "abc", "displayName": "Ann", "active": True, "avatarUrls": {"48x48": "https://a/x"}}
    assert policy.hash(user) == {"accountId": digest("abc"), "displayName": digest("Ann"), "active": digest("true"),
                                 "avatarUrls": {"48x48": digest("https://a/x")}}
    assert policy.hash(None) is None
    assert policy.hash([1.5, None]) == [digest("1.5"), None]


def test_a_policy_removes_dropped_fields_and_hashes_masked_ones_in_fields_and_changelog():
    scope = ExtractionScope(exclude_fields=("labels",), mask_fields=("Customer name",), mask_salt=SALT)
    policy = FieldPolicy.resolve(scope, FIELDS)
    issue = {"id": "1", "fields": {"labels": ["x"], "customfield_10039": "ACME", "summary": "s"},
             "changelog": {"histories": [{"id": "9", "items": [
                 {"field": "labels", "fieldId": "labels", "fromString": "", "toString": "x"},
                 {"field": "Customer name", "fromString": "Old Co", "toString": "ACME", "from": None, "to": None},
                 {"field": "summary", "fieldId": "summary", "fromString": "a", "toString": "s"}]}]}}
    out = policy.issue(issue)
    assert set(out["fields"]) == {"customfield_10039", "summary"}
    assert out["fields"]["customfield_10039"] == policy.hash("ACME")
    items = out["changelog"]["histories"][0]["items"]
    assert [i["field"] for i in items] == ["Customer name", "summary"]  # matched by name when fieldId is absent
    assert items[0]["fromString"] == policy.hash("Old Co") and items[0]["toString"] == policy.hash("ACME")
    assert items[0]["from"] is None
    assert issue["fields"]["customfield_10039"] == "ACME"  # the input is not modified
    assert policy.metadata()["jira/fields_dropped"] == ["labels (Labels)"]
    assert policy.metadata()["jira/fields_masked"] == ["customfield_10039 (Customer name)"]
    assert "-labels" in policy.request_fields()


def test_include_keeps_only_the_named_fields_plus_those_extraction_needs():
    policy = FieldPolicy.resolve(ExtractionScope(include_fields=("summary", "Story Points")), FIELDS)
    kept = {f["id"] for f in FIELDS} - policy.dropped
    assert kept == {"summary", "customfield_10028", "project", "issuetype", "status", "created", "updated",
                    "comment", "worklog", "parent"}
