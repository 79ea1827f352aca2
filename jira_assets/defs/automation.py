"""Keeping the tables fresh: schedules, the Jira change sensor, declarative automation, freshness policies.

Everything ships switched off (`DefaultScheduleStatus.STOPPED` / `DefaultSensorStatus.STOPPED`): turn it on in
the UI (Automation tab) or with `dagster schedule start` / `dagster sensor start`. Intervals come from the
environment so a deployment can change them without code:

| variable                       | default     | what                                                    |
|--------------------------------|-------------|---------------------------------------------------------|
| `JIRA_REFRESH_CRON`            | `0 * * * *` | incremental assets: today's and yesterday's partition   |
| `JIRA_SNAPSHOT_CRON`           | `0 2 * * *` | snapshot assets (and the issue id census): today        |
| `JIRA_CHANGE_SENSOR_SECONDS`   | `300`       | how often the change sensor asks Jira                   |
| `JIRA_CHANGE_SENSOR_PAGE_SIZE` | `100`       | ids per page of the sensor's id-only search             |

Downstream marts follow their upstreams through declarative automation (`MART_AUTOMATION`), evaluated by the
`default_automation_condition_sensor`, which must also be switched on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from typing import Iterable, Optional

import dagster as dg

from jira_assets.arrow import Mismatch, to_epoch_ms
from jira_assets.defs.partitions import incremental_partitions
from jira_assets.defs.resources import JiraCloudResource
from jira_assets.jira.paging import TokenPages

UTC = dt.timezone.utc
SEARCH_PATH = "/rest/api/2/search/jql"
SERVER_INFO_PATH = "/rest/api/2/serverInfo"
DEFAULT_REFRESH_CRON = "0 * * * *"
DEFAULT_SNAPSHOT_CRON = "0 2 * * *"
DEFAULT_SENSOR_SECONDS = 300
DEFAULT_SENSOR_PAGE_SIZE = 100
SENSOR_MAX_PAGES = 20  # beyond this many pages the sensor continues on its next tick, from its cursor
# Jira's search index is eventually consistent: re-read this far behind the cursor, skipping (id, updated)
# pairs already handled, so an update that became searchable late is still seen.
SENSOR_LOOKBACK_MS = 2 * 60 * 1000
SENSOR_CLOCK_SKEW_MS = 5 * 60 * 1000  # how far past Jira's clock an `updated` may be and still count

INCREMENTAL = dg.AssetSelection.tag("jira/mode", "incremental")
SNAPSHOTS = dg.AssetSelection.tag("jira/mode", "snapshot")
ISSUE_FAMILY = dg.AssetSelection.assets(
    *(dg.AssetKey(["jira", "raw", name]) for name in
      ("issues", "issue_comments", "issue_changelogs", "issue_worklogs", "worklog_deletions")))


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _env_int(name: str, default: int) -> int:
    value = _env(name, str(default))
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if number <= 0:
        raise ValueError(f"{name} must be positive, not {number}")
    return number


# ---- declarative automation for the marts ------------------------------------------------------------------

# `eager()` waits for *every* upstream partition to exist; raw tables read with AllPartitionMapping always
# miss most days, so that wait is dropped. Marts also hold while any upstream partition has a failed blocking
# check: the bad partition is stored (the check runs after the write) and must not flow into the marts.
MART_AUTOMATION = (
    dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())
    & ~dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.any_checks_match(dg.AutomationCondition.check_failed(), blocking_only=True)
    )
).with_label("eager, tolerating missing upstream partitions, held by failed blocking checks")


# ---- freshness policies for the raw assets -----------------------------------------------------------------

INCREMENTAL_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=4),
                                                       warn_window=dt.timedelta(hours=2))
SNAPSHOT_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=50),
                                                    warn_window=dt.timedelta(hours=26))


def _freshness(spec: dg.AssetSpec) -> dg.AssetSpec:
    policy = INCREMENTAL_FRESHNESS if spec.tags.get("jira/mode") == "incremental" else SNAPSHOT_FRESHNESS
    return dg.apply_freshness_policy(spec, policy)


def with_freshness(assets: Iterable[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Raw assets with a time-window freshness policy: incremental ones fail after 4 h, snapshots after 50 h.
    """
    return list(dg.map_asset_specs(_freshness, list(assets)))


# ---- jobs and schedules ------------------------------------------------------------------------------------

incremental_job = dg.define_asset_job(
    "jira_incremental",
    selection=INCREMENTAL,
    description="Incremental raw assets (issues and their children, worklogs, deletions, audit) for one UTC "
                "day.",
)
snapshot_job = dg.define_asset_job(
    "jira_snapshots", selection=SNAPSHOTS,
    description="Snapshot raw assets (projects, users, fields, ...) and the issue id census, captured today.")
issue_changes_job = dg.define_asset_job(
    "jira_issue_changes",
    selection=ISSUE_FAMILY,
    description="Issues, their comments, changelogs and worklogs for the UTC days the change sensor saw "
                "change.",
)


def _partition_exists(key: str, at: dt.datetime) -> bool:
    return key in incremental_partitions.get_partition_keys(current_time=at)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@dg.schedule(
    name="jira_incremental_refresh", cron_schedule=_env("JIRA_REFRESH_CRON", DEFAULT_REFRESH_CRON),
    job=incremental_job, execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Refreshes today's partition of every incremental asset, and yesterday's for late updates "
    "(interval: JIRA_REFRESH_CRON, default hourly).",
)
def jira_incremental_refresh(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    at = _utc(context.scheduled_execution_time)
    today = at.date()
    days = [today - dt.timedelta(days=1), today]
    return [
        dg.RunRequest(run_key=f"{day.isoformat()}@{at.isoformat()}", partition_key=day.isoformat(),
                      tags={"jira/trigger": "schedule"})
        for day in days if _partition_exists(day.isoformat(), at)
    ]


@dg.schedule(
    name="jira_snapshot_refresh", cron_schedule=_env("JIRA_SNAPSHOT_CRON", DEFAULT_SNAPSHOT_CRON),
    job=snapshot_job, execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Captures every snapshot asset and the issue id census for today's date "
    "(interval: JIRA_SNAPSHOT_CRON, default daily at 02:00 UTC).",
)
def jira_snapshot_refresh(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    at = _utc(context.scheduled_execution_time)
    today = at.date().isoformat()
    if not _partition_exists(today, at):
        return []
    return [
        dg.RunRequest(
            run_key=f"{today}@{at.isoformat()}", partition_key=today, tags={"jira/trigger": "schedule"}
        )
    ]


# ---- the change sensor -------------------------------------------------------------------------------------

@dataclass
class ChangeCursor:
    """How far the sensor has read: the greatest `updated` seen (epoch ms), the (id, updated) pairs handled
    within the look-back window behind it, so a re-read never triggers the same change twice, and where the
    next scan starts when the last one stopped at its page cap (a bulk edit: more than one tick reads)."""

    high_water_ms: int
    handled: set[str] = field(default_factory=set)
    resume_after: Optional[tuple[int, str]] = None  # (updated, id) of the last change a capped scan read

    @classmethod
    def parse(cls, text: Optional[str]) -> Optional["ChangeCursor"]:
        """None for no cursor; ValueError naming the problem for one this sensor did not write."""
        if not text:
            return None
        try:
            data = json.loads(text)
            resume = data.get("resume_after")
            return cls(int(data["high_water_ms"]), {str(h) for h in data.get("handled", ()) if ":" in str(h)},
                       (int(resume[0]), str(int(resume[1]))) if resume is not None else None)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"unreadable cursor ({type(exc).__name__})") from None

    def dump(self) -> str:
        data = {"high_water_ms": self.high_water_ms, "handled": sorted(self.handled)}
        if self.resume_after is not None:
            data["resume_after"] = list(self.resume_after)
        return json.dumps(data)


def _changed_since(client, since: str, page_size: int, log) -> tuple[list[tuple[str, int]], bool]:
    """(issue id, updated epoch ms) of issues matching the JQL condition `since`, oldest first, ids only; and
    whether the page cap stopped the scan before its end."""
    paging = TokenPages("issues", page_size, method="GET", id_field="id")
    params = {"jql": f"{since} ORDER BY updated ASC, id ASC", "fields": "id,updated"}
    found: list[tuple[str, int]] = []
    pages = client.iter_pages(SEARCH_PATH, paging, params=params)
    for number, page in enumerate(pages):
        for issue in page:
            updated = (issue.get("fields") or {}).get("updated")
            try:
                found.append((str(issue["id"]), to_epoch_ms(updated)))
            except (Mismatch, KeyError, TypeError, ValueError):
                log.warning(f"issue {issue.get('id')!r}: no readable `updated` ({str(updated)[:40]!r}); "
                            "skipped")
        if number + 1 >= SENSOR_MAX_PAGES:
            return found, next(pages, None) is not None
    return found, False


def _jira_now_ms(client) -> int:
    """Jira's clock (what `updated` is stamped with); ours if Jira's answer has no readable time."""
    server_time = (client.get_json(SERVER_INFO_PATH) or {}).get("serverTime")
    try:
        return to_epoch_ms(server_time)
    except (Mismatch, TypeError, ValueError):
        return int(dt.datetime.now(UTC).timestamp() * 1000)


@dg.sensor(
    name="jira_issue_changes",
    job=issue_changes_job,
    minimum_interval_seconds=_env_int("JIRA_CHANGE_SENSOR_SECONDS", DEFAULT_SENSOR_SECONDS),
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Asks Jira cheaply (an id-only search for `updated` after its cursor) whether any issue "
    "changed, and requests runs only for the UTC days those issues were updated in. Its cursor survives "
    "restarts.",
)
def jira_issue_changes(context: dg.SensorEvaluationContext, jira: JiraCloudResource) -> dg.SensorResult:
    client = jira.get_client()
    jira_now = _jira_now_ms(client)
    try:
        cursor = ChangeCursor.parse(context.cursor)
    except ValueError as exc:  # edited by hand: start again from Jira's clock rather than fail every tick
        context.log.warning(f"jira_issue_changes: {exc}; starting again from Jira's current time")
        cursor = None
    if cursor is None:  # first tick: start from Jira's own clock, never from ours
        return dg.SensorResult(cursor=ChangeCursor(jira_now).dump(),
                               skip_reason="cursor initialised at Jira's current time")
    page_size = _env_int("JIRA_CHANGE_SENSOR_PAGE_SIZE", DEFAULT_SENSOR_PAGE_SIZE)
    if cursor.resume_after is None:
        since = f"updated >= {cursor.high_water_ms - SENSOR_LOOKBACK_MS}"
    else:  # right after the last change the capped scan read, in the search's own order (updated, id)
        at, after_id = cursor.resume_after
        since = f"(updated > {at} OR (updated >= {at} AND id > {after_id}))"
    found, capped = _changed_since(client, since, page_size, context.log)
    # an `updated` beyond Jira's own clock (a bad import, a wrong server clock) must not carry the cursor
    # into the future, where it would wait for years before seeing the next real change
    future = [(i, u) for i, u in found if u > jira_now + SENSOR_CLOCK_SKEW_MS]
    for issue_id, updated in future[:5]:
        when = dt.datetime.fromtimestamp(updated / 1000, tz=UTC).isoformat()
        context.log.warning(f"issue {issue_id} is updated in the future ({when}); ignored until Jira's clock "
                            "reaches it")
    seen = [(i, u) for i, u in found if u <= jira_now + SENSOR_CLOCK_SKEW_MS]
    new = [(i, u) for i, u in seen if f"{i}:{u}" not in cursor.handled]
    high_water = max([cursor.high_water_ms, *(u for _, u in seen)])
    # a scan stopped by the page cap goes on right after its last change next tick (else a bulk edit of more
    # issues than one tick reads would be re-read from the same start forever)
    resume = (found[-1][1], found[-1][0]) if capped and found and not future else None
    keep_from = high_water - SENSOR_LOOKBACK_MS
    handled = {h for h in cursor.handled if int(h.rsplit(":", 1)[1]) >= keep_from}
    handled |= {f"{i}:{u}" for i, u in seen if u >= keep_from}
    next_cursor = ChangeCursor(high_water, handled, resume).dump()
    if not new:
        return dg.SensorResult(cursor=next_cursor, skip_reason="no issue changed since the cursor")
    now = max(dt.datetime.now(UTC), dt.datetime.fromtimestamp(jira_now / 1000, tz=UTC))
    by_day: dict[str, list[str]] = {}
    for issue_id, updated in new:
        day = dt.datetime.fromtimestamp(updated / 1000, tz=UTC).date().isoformat()
        by_day.setdefault(day, []).append(issue_id)
    requests = []
    for day, ids in sorted(by_day.items()):
        if not _partition_exists(day, now):
            context.log.warning(
                f"{len(ids)} issue(s) changed on {day}, outside the partitions; not requested"
            )
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"issue-changes:{day}:{high_water}",
                partition_key=day,
                tags={"jira/trigger": "change-sensor", "jira/changed_issues": str(len(ids))},
            )
        )
    context.log.info(f"{len(new)} changed issue(s) on {', '.join(sorted(by_day))}")
    return dg.SensorResult(run_requests=requests, cursor=next_cursor)


schedules = [jira_incremental_refresh, jira_snapshot_refresh]
sensors = [jira_issue_changes]
jobs = [incremental_job, snapshot_job, issue_changes_job]
