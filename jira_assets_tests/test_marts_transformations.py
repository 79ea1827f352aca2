"""The mart transformations on small hand-built Arrow tables: each test pins a value a wrong rule would
change."""

from __future__ import annotations

import datetime as dt

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from jira_assets.marts.census import census_jql, deleted_issues
from jira_assets.marts.dimensions import Dimensions
from jira_assets.marts.history import issue_field_history
from jira_assets.marts.issues import issues_current, worklogs_current
from jira_assets.marts.transitions import issue_status_transitions, open_issues_daily

UTC = dt.timezone.utc
TS = pa.timestamp("ms", tz="UTC")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def issue(
    id_,
    updated,
    date,
    *,
    status="10000",
    extracted="2026-03-10T00:00",
    project="100",
    created="2026-03-01T09:00",
    fields=None,
    **extra,
):
    row = {"id": id_, "key": f"P-{id_}", "project_id": project, "project_key": "P", "status_id": status,
           "status_name": {"10000": "To Do", "3": "In Progress", "10002": "Done"}.get(status),
           "status_category_key": None, "created": at(created), "updated": at(updated),
           "_extracted_at": at(extracted), "date": date,
           "fields_json": orjson.dumps(fields or {}).decode()}
    row.update(extra)
    return row


def issues_table(*rows):
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("key", pa.string()),
            ("project_id", pa.string()),
            ("project_key", pa.string()),
            ("status_id", pa.string()),
            ("status_name", pa.string()),
            ("status_category_key", pa.string()),
            ("created", TS),
            ("updated", TS),
            ("_extracted_at", TS),
            ("date", pa.string()),
            ("fields_json", pa.large_string()),
        ]
    )
    extra = sorted({k for r in rows for k in r} - set(schema.names))
    for name in extra:
        schema = schema.append(pa.field(name, pa.string()))
    return pa.Table.from_pylist([{**{k: None for k in schema.names}, **r} for r in rows], schema=schema)


def change(
    issue_id, history_id, created, field, frm, frm_s, to, to_s, *, date="2026-03-05", index=0, field_id=None
):
    return {
        "issue_id": str(issue_id),
        "history_id": str(history_id),
        "item_index": index,
        "author_account_id": "acc-1",
        "created": at(created),
        "field": field,
        "field_id": field_id or field,
        "field_type": "jira",
        "from_value": frm,
        "from_string": frm_s,
        "to_value": to,
        "to_string": to_s,
        "date": date,
    }


def changelog_table(*rows):
    schema = pa.schema([("issue_id", pa.string()), ("history_id", pa.string()), ("item_index", pa.int64()),
                        ("author_account_id", pa.string()), ("created", TS), ("field", pa.string()),
                        ("field_id", pa.string()), ("field_type", pa.string()), ("from_value", pa.string()),
                        ("from_string", pa.string()), ("to_value", pa.string()), ("to_string", pa.string()),
                        ("date", pa.string())])
    return pa.Table.from_pylist(list(rows), schema=schema)


STATUSES = pa.table({"id": ["10000", "3", "10002"], "name": ["To Do", "In Progress", "Done"],
                     "status_category_key": ["new", "indeterminate", "done"]})
FIELDS = pa.table({
    "id": ["status", "labels", "components", "customfield_10020", "summary", "priority"],
    "name": ["Status", "Labels", "Component/s", "Sprint", "Summary", "Priority"],
    "custom": [False, False, False, True, False, False],
    "schema_type": ["status", "array", "array", "array", "string", "priority"],
    "schema_items": [None, "string", "component", "json", None, None],
    "schema_custom": [None, None, None, "com.pyxis.greenhopper.jira:gh-sprint", None, None],
})


# ---- issues_current ----------------------------------------------------------------------------------------

def test_the_current_row_of_an_issue_is_its_latest_update_across_partitions_with_todays_names():
    issues = issues_table(
        issue(1, "2026-03-02T10:00", "2026-03-02", status="3"),
        issue(1, "2026-03-04T08:00", "2026-03-04", status="10002"),
        issue(1, "2026-03-03T10:00", "2026-03-03", status="3"),
        issue(2, "2026-03-02T11:00", "2026-03-02"),
    )
    dims = Dimensions.load(statuses=pa.table({"id": ["10002"], "name": ["Shipped"],
                                              "status_category_key": ["done"]}),
                           status_categories=pa.table({"key": ["done"], "name": ["Done"]}))
    out = issues_current(issues, dims).to_pylist()
    assert [r["issue_id"] for r in out] == [1, 2]
    assert out[0]["status_id"] == "10002" and out[0]["last_partition"] == "2026-03-04"
    assert out[0]["status_name"] == "Shipped"  # the renamed status, not the name embedded in the issue
    assert out[0]["status_category_name"] == "Done"
    assert out[1]["status_name"] == "To Do"  # no dimension row: the embedded name


def test_a_reextracted_issue_with_the_same_updated_keeps_the_later_extraction():
    issues = issues_table(
        issue(1, "2026-03-02T10:00", "2026-03-02", summary="old", extracted="2026-03-02T11:00"),
        issue(1, "2026-03-02T10:00", "2026-03-02", summary="new", extracted="2026-03-02T12:00"),
    )
    assert issues_current(issues, Dimensions()).column("summary").to_pylist() == ["new"]


def test_deleted_issues_are_not_current_and_issues_of_a_vanished_project_are_flagged():
    issues = issues_table(
        issue(1, "2026-03-02T10:00", "2026-03-02"),
        issue(2, "2026-03-02T10:00", "2026-03-02"),
        issue(3, "2026-03-02T10:00", "2026-03-02"),
    )
    deleted = pa.table({"issue_id": [1, 3], "state": ["deleted", "no_longer_visible"]})
    out = issues_current(issues, Dimensions(), deleted)
    assert out.column("issue_id").to_pylist() == [2, 3]
    assert out.column("visibility").to_pylist() == ["visible", "no_longer_visible"]


def test_the_current_sprint_is_the_active_one_named_from_the_sprint_table():
    sprint_json = orjson.dumps(
        [
            {"id": 7, "name": "S7", "state": "closed"},
            {"id": 9, "name": "S9", "state": "active"},
            {"id": 11, "name": "S11", "state": "future"},
        ]
    ).decode()
    issues = issues_table(issue(1, "2026-03-02T10:00", "2026-03-02", sprint=sprint_json))
    sprints = pa.table({"id": [9], "name": ["Sprint nine"], "state": ["active"]})
    dims = Dimensions.load(issue_fields=FIELDS, sprints=sprints)
    row = issues_current(issues, dims).to_pylist()[0]
    assert row["sprint_ids"] == [7, 9, 11]
    assert (row["current_sprint_id"], row["current_sprint_name"]) == (9, "Sprint nine")


def test_snapshot_dimensions_are_read_from_their_latest_capture_only():
    users = pa.table({"account_id": ["a", "a"], "display_name": ["Old Name", "New Name"],
                      "date": ["2026-03-01", "2026-03-02"]})
    issues = issues_table(issue(1, "2026-03-02T10:00", "2026-03-02", creator_account_id="a"))
    assert issues_current(issues, Dimensions.load(users=users)).column(
        "creator_display_name"
    ).to_pylist() == ["New Name"]


def test_latest_versions_read_from_hive_partitions_where_an_older_file_lacks_a_column(tmp_path):
    old = issues_table(issue(1, "2026-03-02T10:00", "2026-03-02")).drop_columns(["date", "status_name"])
    new = issues_table(issue(1, "2026-03-03T10:00", "2026-03-03", status="3"),
                       issue(2, "2026-03-03T11:00", "2026-03-03")).drop_columns(["date"])
    for date, table in (("2026-03-02", old), ("2026-03-03", new)):
        (tmp_path / f"date={date}").mkdir()
        pq.write_table(table, tmp_path / f"date={date}" / "part-00000.parquet")
    dataset = ds.dataset(str(tmp_path), format="parquet", partitioning="hive", schema=new.schema.append(
        pa.field("date", pa.string())))
    out = issues_current(dataset, Dimensions()).to_pylist()
    assert [(r["issue_id"], r["status_id"], r["last_partition"]) for r in out] == [
        (1, "3", "2026-03-03"), (2, "10000", "2026-03-03")]


# ---- worklogs_current (C10) --------------------------------------------------------------------------------

def test_a_deleted_worklog_and_the_worklogs_of_a_deleted_issue_are_not_current():
    worklogs = pa.Table.from_pylist([
        {"id": "100", "issue_id": "10", "time_spent_seconds": 60, "updated": at("2026-03-01T10:00"),
         "_extracted_at": at("2026-03-02T00:00"), "date": "2026-03-01"},
        {"id": "101", "issue_id": "10", "time_spent_seconds": 60, "updated": at("2026-03-01T10:00"),
         "_extracted_at": at("2026-03-02T00:00"), "date": "2026-03-01"},
        {"id": "101", "issue_id": "10", "time_spent_seconds": 120, "updated": at("2026-03-02T10:00"),
         "_extracted_at": at("2026-03-03T00:00"), "date": "2026-03-02"},
        {"id": "200", "issue_id": "20", "time_spent_seconds": 60, "updated": at("2026-03-01T10:00"),
         "_extracted_at": at("2026-03-02T00:00"), "date": "2026-03-01"},
    ])
    deletions = pa.table({"worklog_id": ["100"], "updated_time": pa.array([at("2026-03-02T09:00")], TS)})
    out = worklogs_current(
        worklogs, deletions, Dimensions(), pa.table({"issue_id": [20], "state": ["deleted"]})
    )
    assert out.select(["worklog_id", "time_spent_seconds"]).to_pylist() == [
        {"worklog_id": "101", "time_spent_seconds": 120}]


# ---- deleted_issues ----------------------------------------------------------------------------------------

def census(*ids, started="2026-03-05T00:00", date="2026-03-05"):
    return pa.table({"id": pa.array(ids, pa.int64()), "_extracted_at": pa.array([at(started)] * len(ids), TS),
                     "date": [date] * len(ids)})


def test_an_issue_missing_from_the_census_is_deleted_unless_its_project_left_the_roster():
    issues = issues_table(issue(1, "2026-03-02T10:00", "2026-03-02"),
                          issue(2, "2026-03-02T10:00", "2026-03-02", project="200"),
                          issue(3, "2026-03-02T10:00", "2026-03-02"),
                          issue(4, "2026-03-02T10:00", "2026-03-02", created="2026-03-05T00:01"))
    projects = pa.table({"id": ["100"], "key": ["P"], "name": ["Project"]})
    out = deleted_issues(issues, census(3), Dimensions.load(projects=projects))
    assert out.select(["issue_id", "state"]).to_pylist() == [
        {"issue_id": 1, "state": "deleted"}, {"issue_id": 2, "state": "no_longer_visible"}]
    # issue 4 was created after the census began: not in it, and not deleted either


def test_only_the_latest_census_counts_and_no_census_means_no_deletions():
    issues = issues_table(
        issue(1, "2026-03-02T10:00", "2026-03-02"), issue(2, "2026-03-02T10:00", "2026-03-02")
    )
    two_censuses = pa.concat_tables([census(2, date="2026-03-04"), census(1, 2, date="2026-03-05")])
    assert deleted_issues(issues, two_censuses, Dimensions()).num_rows == 0
    assert deleted_issues(issues, census(1, date="2026-03-06"), Dimensions()).column(
        "issue_id"
    ).to_pylist() == [2]
    assert deleted_issues(issues, None, Dimensions()).num_rows == 0


def test_the_census_asks_for_issues_created_before_it_began_in_the_extractors_projects_then_its_filter():
    from jira_assets.extract import ExtractSettings

    settings = ExtractSettings(projects=("ABC", "10001"), jql_filter="labels = x")
    assert census_jql(1772668800000, settings) == (
        'created < 1772668800000 AND project in ("ABC", 10001) ORDER BY id ASC')
    assert census_jql(1772668800000, settings, with_filter=True) == (
        'created < 1772668800000 AND project in ("ABC", 10001) AND (labels = x) ORDER BY id ASC')


def test_an_issue_that_left_the_filter_is_out_of_scope_not_deleted_and_leaves_issues_current():
    """With JIRA_JQL_FILTER='statusCategory != Done', closing an issue takes it out of the filter: it exists."""
    issues = issues_table(issue(1, "2026-03-02T10:00", "2026-03-02"), issue(2, "2026-03-02T10:00", "2026-03-02"),
                          issue(3, "2026-03-02T10:00", "2026-03-02"))
    taken = census(1, 2).append_column("in_scope", pa.array([True, False]))
    out = deleted_issues(issues, taken, Dimensions())
    assert out.select(["issue_id", "state"]).to_pylist() == [
        {"issue_id": 2, "state": "out_of_scope"}, {"issue_id": 3, "state": "deleted"}]
    assert issues_current(issues, Dimensions(), out).column("issue_id").to_pylist() == [1]


def test_a_census_of_some_projects_says_nothing_of_the_other_projects_issues():
    issues = issues_table(issue(1, "2026-03-02T10:00", "2026-03-02"),
                          issue(2, "2026-03-02T10:00", "2026-03-02", project="200", project_key="Q"))
    taken = census(1).append_column("scope_projects", pa.array(["P"]))  # issue 1's project, by key
    assert deleted_issues(issues, taken, Dimensions()).num_rows == 0
    assert deleted_issues(issues, census(1), Dimensions()).column("issue_id").to_pylist() == [2]


# ---- issue_field_history -----------------------------------------------------------------------------------

def test_the_initial_value_of_a_field_changed_twice_in_one_day_is_the_from_of_the_first_change():
    issues = issues_table(issue(1, "2026-03-05T16:00", "2026-03-05", created="2026-03-01T09:00",
                                fields={"priority": {"id": "1", "name": "Highest"}, "summary": "Fix it"}))
    changes = changelog_table(
        # listed out of order on purpose: the later change first, and a history id that sorts wrong as text
        change(1, 10010, "2026-03-05T15:00", "priority", "2", "High", "1", "Highest"),
        change(1, 9999, "2026-03-05T09:00", "priority", "3", "Medium", "2", "High"),
    )
    rows = [r for r in issue_field_history(changes, issues, Dimensions.load(issue_fields=FIELDS)).to_pylist()
            if r["field_id"] == "priority"]
    assert [(r["is_initial_value"], r["value_id"], r["value"]) for r in rows] == [
        (True, "3", "Medium"), (False, "2", "High"), (False, "1", "Highest")]
    assert rows[0]["changed_at"] == at("2026-03-01T09:00")
    assert rows[0]["valid_until"] == at("2026-03-05T09:00") and rows[1]["valid_until"] == at(
        "2026-03-05T15:00"
    )
    assert [r["is_current"] for r in rows] == [False, False, True]


def test_a_change_jira_gave_no_time_is_left_out_and_the_history_still_builds():
    issues = issues_table(issue(1, "2026-03-05T16:00", "2026-03-05", created="2026-03-01T09:00",
                                fields={"priority": {"id": "1", "name": "Highest"}}))
    timeless = change(1, 10011, "2026-03-05T12:00", "priority", "2", "High", "1", "Highest")
    timeless["created"] = None
    changes = changelog_table(timeless, change(1, 9999, "2026-03-05T09:00", "priority", "3", "Medium", "2", "High"))
    rows = [r for r in issue_field_history(changes, issues, Dimensions.load(issue_fields=FIELDS)).to_pylist()
            if r["field_id"] == "priority"]
    assert [(r["is_initial_value"], r["value"], r["changed_at"]) for r in rows] == [
        (True, "Medium", at("2026-03-01T09:00")), (False, "High", at("2026-03-05T09:00"))]


def test_a_field_that_never_changed_has_its_current_value_as_the_initial_value():
    issues = issues_table(issue(1, "2026-03-05T16:00", "2026-03-05", fields={
        "summary": "Fix it", "labels": ["b", "a"], "updated": "2026-03-05T16:00:00.000+0000",
        "customfield_10020": [{"id": 4, "name": "S4", "state": "closed"}], "assignee": None}))
    rows = {r["field_id"]: r for r in issue_field_history(changelog_table(), issues,
                                                          Dimensions.load(issue_fields=FIELDS)).to_pylist()}
    assert set(rows) == {
        "summary",
        "labels",
        "customfield_10020",
    }  # computed and empty fields have no history
    assert rows["summary"]["value"] == "Fix it" and rows["summary"]["is_initial_value"]
    assert rows["labels"]["values"] == ["b", "a"] and rows["labels"]["is_multi_value"]
    assert (rows["customfield_10020"]["value_ids"], rows["customfield_10020"]["values"]) == (["4"], ["S4"])
    assert rows["summary"]["values"] is None  # single-value fields leave the set columns empty


def test_multi_value_fields_carry_the_whole_set_after_each_change():
    issues = issues_table(issue(1, "2026-03-05T16:00", "2026-03-05", fields={
        "components": [{"id": "c2", "name": "API"}, {"id": "c3", "name": "DB"}]}))
    changes = changelog_table(
        change(1, 1, "2026-03-02T10:00", "labels", None, "a", None, "a b"),
        change(1, 2, "2026-03-03T10:00", "Sprint", "4", "S4", "4, 5", "S4, S5", field_id="customfield_10020"),
        change(1, 3, "2026-03-04T10:00", "Component", None, None, "c3", "DB", field_id="components"),
        change(1, 3, "2026-03-04T10:00", "Component", "c1", "UI", None, None, field_id="components", index=1),
    )
    rows = issue_field_history(changes, issues, Dimensions.load(issue_fields=FIELDS)).to_pylist()
    by = lambda f: [r for r in rows if r["field_id"] == f]  # noqa: E731
    assert [r["values"] for r in by("labels")] == [["a"], ["a", "b"]]
    assert [r["value_ids"] for r in by("customfield_10020")] == [["4"], ["4", "5"]]
    # components: created with {UI, API}; DB added and UI removed in one history
    assert [r["values"] for r in by("components")] == [["API", "UI"], ["API", "UI", "DB"], ["API", "DB"]]


def test_changelogs_of_an_issue_stored_in_two_partitions_are_counted_once_from_the_newest():
    issues = issues_table(issue(1, "2026-03-05T16:00", "2026-03-05"))
    changes = changelog_table(
        change(1, 1, "2026-03-02T10:00", "summary", None, "a", None, "b", date="2026-03-02"),
        change(1, 1, "2026-03-02T10:00", "summary", None, "a", None, "b", date="2026-03-05"),
        change(1, 2, "2026-03-05T10:00", "summary", None, "b", None, "c", date="2026-03-05"),
    )
    rows = issue_field_history(changes, issues, Dimensions()).to_pylist()
    assert [r["value"] for r in rows] == ["a", "b", "c"]


def test_the_history_built_a_few_issues_at_a_time_equals_the_history_built_at_once():
    issues = issues_table(*(issue(i, f"2026-03-0{1 + i % 3}T10:00", f"2026-03-0{1 + i % 3}",
                                  fields={"summary": f"s{i}"}) for i in range(1, 8)))
    changes = changelog_table(*(change(i, 100 + i, "2026-03-01T09:00", "summary", None, "x", None, f"s{i}")
                                for i in range(1, 8, 2)))
    dims = Dimensions.load(issue_fields=FIELDS)
    order = [(c, "ascending") for c in ("issue_id", "field_id", "changed_at")]
    whole = issue_field_history(changes, issues, dims).sort_by(order)
    assert issue_field_history(changes, issues, dims, chunk_size=2).sort_by(order).equals(whole)
    assert sorted(set(whole.column("issue_id").to_pylist())) == list(range(1, 8))


def test_a_deleted_issue_has_no_field_history():
    issues = issues_table(issue(1, "2026-03-05T16:00", "2026-03-05", fields={"summary": "x"}))
    changes = changelog_table(change(1, 1, "2026-03-02T10:00", "summary", None, "a", None, "x"))
    out = issue_field_history(
        changes, issues, Dimensions(), pa.table({"issue_id": [1], "state": ["deleted"]})
    )
    assert out.num_rows == 0


# ---- issue_status_transitions and open_issues_daily --------------------------------------------------------

def current(*rows):
    names = ["issue_id", "issue_key", "project_id", "project_key", "created", "status_id", "status_name",
             "status_category_key"]
    return pa.Table.from_pylist([dict(zip(names, r)) for r in rows])


AS_OF = at("2026-03-10T00:00")


def test_time_in_status_lead_time_and_cycle_time():
    issues = current((1, "P-1", "100", "P", at("2026-03-01T00:00"), "10002", "Done", "done"))
    changes = changelog_table(
        change(1, 1, "2026-03-02T00:00", "status", "10000", "To Do", "3", "In Progress"),
        change(1, 2, "2026-03-02T12:00", "status", "3", "In Progress", "10000", "To Do"),
        change(1, 3, "2026-03-03T00:00", "status", "10000", "To Do", "3", "In Progress"),
        change(1, 4, "2026-03-04T06:00", "status", "3", "In Progress", "10002", "Done"),
    )
    rows = issue_status_transitions(changes, issues, Dimensions.load(statuses=STATUSES), AS_OF).to_pylist()
    assert [(r["status_name"], r["visit"], r["seconds_in_status"]) for r in rows] == [
        ("To Do", 1, 86400), ("In Progress", 1, 43200), ("To Do", 2, 43200), ("In Progress", 2, 108000),
        ("Done", 1, 6 * 86400 - 6 * 3600)]
    assert rows[1]["total_seconds_in_status"] == 43200 + 108000
    assert rows[-1]["is_current"] and rows[-1]["exited_at"] is None
    assert rows[0]["lead_time_seconds"] == 3 * 86400 + 6 * 3600  # created -> done
    assert rows[0]["cycle_time_seconds"] == 2 * 86400 + 6 * 3600  # first In Progress -> done


def test_an_issue_reopened_after_done_has_no_lead_time_and_one_that_never_moved_has_one_row():
    issues = current((1, "P-1", "100", "P", at("2026-03-01T00:00"), "3", "In Progress", "indeterminate"),
                     (2, "P-2", "100", "P", at("2026-03-01T00:00"), "10000", "To Do", "new"))
    changes = changelog_table(
        change(1, 1, "2026-03-02T00:00", "status", "10000", "To Do", "10002", "Done"),
        change(1, 2, "2026-03-03T00:00", "status", "10002", "Done", "3", "In Progress"),
    )
    rows = issue_status_transitions(changes, issues, Dimensions.load(statuses=STATUSES), AS_OF).to_pylist()
    assert {r["lead_time_seconds"] for r in rows if r["issue_id"] == 1} == {None}
    assert [(r["status_id"], r["seconds_in_status"]) for r in rows if r["issue_id"] == 2] == [
        ("10000", 9 * 86400)
    ]


def test_open_issues_at_the_end_of_a_day_per_project_and_status():
    issues = current((1, "P-1", "100", "P", at("2026-03-01T00:00"), "10002", "Done", "done"),
                     (2, "P-2", "100", "P", at("2026-03-01T00:00"), "10000", "To Do", "new"),
                     (3, "P-3", "100", "P", at("2026-03-03T00:00"), "10000", "To Do", "new"))
    changes = changelog_table(change(1, 1, "2026-03-02T12:00", "status", "10000", "To Do", "10002", "Done"))
    transitions = issue_status_transitions(changes, issues, Dimensions.load(statuses=STATUSES), AS_OF)
    day1 = open_issues_daily(transitions, dt.date(2026, 3, 1), AS_OF).to_pylist()
    assert [(r["status_name"], r["open_issues"]) for r in day1] == [("To Do", 2)]
    day2 = open_issues_daily(transitions, dt.date(2026, 3, 2), AS_OF).to_pylist()
    assert [(r["status_name"], r["open_issues"]) for r in day2] == [("To Do", 1)]  # issue 1 is done by then
    day3 = open_issues_daily(transitions, dt.date(2026, 3, 3), AS_OF).to_pylist()
    assert [(r["status_name"], r["open_issues"]) for r in day3] == [("To Do", 2)]  # issue 3 created that day


@pytest.mark.parametrize("day, expected", [(dt.date(2026, 3, 2), 2), (dt.date(2026, 3, 3), 1)])
def test_a_status_change_at_midnight_counts_for_the_next_day(day, expected):
    issues = current((1, "P-1", "100", "P", at("2026-03-01T00:00"), "10002", "Done", "done"),
                     (2, "P-2", "100", "P", at("2026-03-01T00:00"), "10000", "To Do", "new"))
    changes = changelog_table(change(1, 1, "2026-03-03T00:00", "status", "10000", "To Do", "10002", "Done"))
    transitions = issue_status_transitions(changes, issues, Dimensions.load(statuses=STATUSES), AS_OF)
    assert sum(r["open_issues"] for r in open_issues_daily(transitions, day, AS_OF).to_pylist()) == expected
