"""R4 — bad input: whatever a user gets wrong ends in one clear line naming the cause, and assets that do not
depend on the mistake still land.

Kinds covered (each by one or more cases): settings that cannot work (read when the code location loads), the
site URL, OAuth client and refresh-token problems, the token store, API-token auth, OAuth scopes and Jira
permissions, the extraction scope (projects, JQL, fields), partition keys and capture dates, storage (S3
bucket, access, credentials, KMS key, full disk, unwritable folder), and odd answers from Jira (malformed
JSON, HTML error pages, unexpected shapes, unexpected field types, huge values).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import orjson
import pytest

from jira_assets.simulator import Simulator, SimulatorConfig

from .fault_harness import (
    assert_one_clear_line,
    environment,
    failures,
    fast_client_retries,
    jira_env,
    materialize,
    step_retries,
    stored,
    today,
    visible_parquet_paths,
)

ROOT = Path(__file__).resolve().parents[1]
BYSTANDER = "issue_types"  # a cheap snapshot any account may read: it must land whatever the mistake
TODAY = today().isoformat()
YESTERDAY = (today() - dt.timedelta(days=1)).isoformat()


@pytest.fixture(scope="module")
def site():
    with Simulator(SimulatorConfig(seed=7, issues=60, days=5)) as sim:
        yield sim


@pytest.fixture
def env(site, tmp_path, monkeypatch):
    """A working configuration (a fresh grant and token store per test); cases change one thing in it."""
    fast_client_retries(monkeypatch)
    site.clear_disruptions()
    values = jira_env(site.info(), tmp_path / "lake", tmp_path, JIRA_REFRESH_TOKEN=site.grant())
    yield values
    site.clear_disruptions()


def lake(env: dict) -> Path:
    return Path(env["JIRA_LAKE"])


# ---- settings that cannot work: refused when the code location loads ---------------------------------------

LOAD_CASES = {
    "unknown-auth-method": ({"JIRA_AUTH_METHOD": "kerberos"}, ["JIRA_AUTH_METHOD", "kerberos", "oauth"]),
    "non-integer-max-in-flight": ({"JIRA_MAX_IN_FLIGHT": "four"},
                                  ["JIRA_MAX_IN_FLIGHT", "four", "whole number"]),
    "zero-page-size": ({"JIRA_ISSUE_PAGE_SIZE": "0"}, ["JIRA_ISSUE_PAGE_SIZE", "at least 1"]),
    "negative-child-workers": ({"JIRA_CHILD_WORKERS": "-2"}, ["JIRA_CHILD_WORKERS", "at least 1"]),
    "lake-unsupported-scheme": ({"JIRA_LAKE": "gs://bucket/lake"},
                                ["JIRA_LAKE", "gs://bucket/lake", "s3://"]),
    "glue-with-local-lake": ({"JIRA_GLUE_DATABASE": "jira"}, ["JIRA_GLUE_DATABASE", "s3://"]),
    "scope-file-missing": ({"JIRA_SCOPE_FILE": "/nonexistent/scope.yaml"}, ["JIRA_SCOPE_FILE", "no file"]),
    "scope-file-not-yaml": ({"JIRA_SCOPE_FILE": "{scope_yaml}"}, ["scope.yaml", "not valid YAML"]),
    "rename-without-equals": ({"JIRA_RENAME_FIELDS": "Story Points"}, ["JIRA_RENAME_FIELDS", "field=column"]),
    "mask-without-salt": ({"JIRA_MASK_FIELDS": "summary"}, ["JIRA_MASK_SALT"]),
    "jql-with-order-by": ({"JIRA_JQL_FILTER": "project = OPS ORDER BY created"},
                          ["JIRA_JQL_FILTER", "ORDER BY"]),
    "project-not-a-key": ({"JIRA_PROJECTS": "Operations Team"}, ["JIRA_PROJECTS", "Operations Team"]),
    "unknown-compression": ({"JIRA_PARQUET_COMPRESSION": "rar"}, ["JIRA_PARQUET_COMPRESSION", "rar"]),
    "allow-local-not-a-boolean": ({"JIRA_ALLOW_LOCAL": "maybe"}, ["JIRA_ALLOW_LOCAL", "maybe"]),
    "mask-salt-too-short": ({"JIRA_MASK_FIELDS": "summary", "JIRA_MASK_SALT": "abc"},
                            ["JIRA_MASK_SALT", "shorter than 16"]),
    "rename-to-a-reserved-column": ({"JIRA_RENAME_FIELDS": "Story Points=id"},
                                    ["JIRA_RENAME_FIELDS", "'id' is reserved"]),
    "scope-file-unknown-setting": ({"JIRA_SCOPE_FILE": "{scope_unknown}"}, ["flavour", "unknown setting"]),
    "max-in-flight-absurd": ({"JIRA_MAX_IN_FLIGHT": "20000000"}, ["JIRA_MAX_IN_FLIGHT", "more than 64"]),
    "page-size-absurd": ({"JIRA_ISSUE_PAGE_SIZE": "1000000"}, ["JIRA_ISSUE_PAGE_SIZE", "more than 5000"]),
    "lake-s3-with-one-slash": ({"JIRA_LAKE": "s3:/my-bucket/lake"}, ["JIRA_LAKE", "s3:/my-bucket/lake",
                                                                      "s3://bucket/prefix"]),
    "lake-s3-without-bucket": ({"JIRA_LAKE": "s3:///lake"}, ["JIRA_LAKE", "names no bucket"]),
    "jql-escaping-its-parentheses": ({"JIRA_JQL_FILTER": "status = Done) OR (project = DEMO"},
                                     ["JIRA_JQL_FILTER", "closes a parenthesis"]),
}


@pytest.mark.parametrize("case", list(LOAD_CASES))
def test_a_setting_that_cannot_work_stops_the_code_location_in_one_line(case, env, tmp_path):
    changes, needles = LOAD_CASES[case]
    (tmp_path / "scope.yaml").write_text("projects: [OPS\nfields: : :\n")
    (tmp_path / "unknown.yaml").write_text("projects: [OPS]\nflavour: vanilla\n")
    changes = {k: v.format(scope_yaml=tmp_path / "scope.yaml", scope_unknown=tmp_path / "unknown.yaml")
               for k, v in changes.items()}
    from jira_assets.definitions import defs

    with environment({**env, **changes}):
        with pytest.raises(Exception) as error:
            defs()
    assert_one_clear_line(str(error.value), *needles)


def test_a_blank_or_padded_lake_setting_means_what_it_says(env, tmp_path):
    from jira_assets.defs.resources import DEFAULT_LAKE, io_manager_from_env

    with environment({**env, "JIRA_LAKE": ""}):
        assert io_manager_from_env().base_path == DEFAULT_LAKE  # not the current folder
    with environment({**env, "JIRA_LAKE": f"  {tmp_path}/lake\n"}):
        assert io_manager_from_env().base_path == f"{tmp_path}/lake"


@pytest.mark.parametrize("value", ["2026-02-30", "last monday", "2026/01/01"])
def test_a_bad_history_start_is_named_when_the_partitions_are_built(value, env):
    from jira_assets.defs.partitions import history_start

    with environment({**env, "JIRA_HISTORY_START": value}):
        with pytest.raises(Exception) as error:
            history_start()  # what jira_assets.defs.partitions runs when the code location loads
    assert_one_clear_line(str(error.value), "JIRA_HISTORY_START", value)


# ---- mistakes found at run time: the asset fails in one line, the bystander lands --------------------------


@dataclass
class Case:
    changes: dict = field(default_factory=dict)  # env changes (None unsets)
    needles: tuple = ()
    names: tuple = ("projects",)
    partition: str = TODAY
    bystander: Optional[str] = None  # an asset that must still land
    nothing_written: bool = True  # the failing assets leave no table behind
    named: bool = True  # the message starts with the asset's name (an input's failure names the input)
    setup: Optional[Callable[[Simulator, dict, Path], dict]] = None  # returns more env changes


def _spent_then_stale(sim: Simulator, env: dict, tmp: Path) -> dict:
    """A refresh token that was rotated and is reused after the leeway: Atlassian revokes the whole grant."""
    from jira_assets.jira import FileTokenStore, OAuth3LO

    info = sim.info()
    token = sim.grant()
    OAuth3LO(info["client_id"], info["client_secret"], FileTokenStore(tmp / "other.json"),
             auth_base_url=info["auth_base_url"], initial_refresh_token=token).tokens()
    sim.clock.advance(601)
    return {"JIRA_REFRESH_TOKEN": token}


def _without_user_scope(sim: Simulator, env: dict, tmp: Path) -> dict:
    from jira_assets.simulator.oauth import ALL_SCOPES

    return {"JIRA_REFRESH_TOKEN": sim.grant(scopes=[s for s in ALL_SCOPES if s != "read:jira-user"])}


def _non_admin(sim: Simulator, env: dict, tmp: Path) -> dict:
    return {"JIRA_REFRESH_TOKEN": sim.grant(admin=False)}


def _corrupt_token_store(sim: Simulator, env: dict, tmp: Path) -> dict:
    (tmp / "broken.json").write_text('{"access_token": "abc", "refresh')
    return {"JIRA_TOKEN_STORE": str(tmp / "broken.json")}


def _token_store_is_a_folder(sim: Simulator, env: dict, tmp: Path) -> dict:
    (tmp / "tokens-dir").mkdir()
    return {"JIRA_TOKEN_STORE": str(tmp / "tokens-dir")}


def _token_file(content: str) -> Callable[[Simulator, dict, Path], dict]:
    def setup(sim: Simulator, env: dict, tmp: Path) -> dict:
        (tmp / "odd-tokens.json").write_text(content)
        return {"JIRA_TOKEN_STORE": str(tmp / "odd-tokens.json")}

    return setup


def _scripted(path: str, *entries: Any) -> Callable[[Simulator, dict, Path], dict]:
    def setup(sim: Simulator, env: dict, tmp: Path) -> dict:
        sim.script(path, list(entries) * 40)  # persistent: every retry gets it too
        return {}

    return setup


HTML_502 = (502, {"Content-Type": "text/html"}, b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>")
LOGIN_PAGE = (200, {"Content-Type": "text/html"},
              b"<!DOCTYPE html><html><body>Log in to continue</body></html>")

RUN_CASES = {
    # the site
    "http-site-url": Case({"JIRA_SITE_URL": "http://acme.atlassian.net", "JIRA_ALLOW_LOCAL": None},
                          ("http://acme.atlassian.net", "https://<name>.atlassian.net")),
    "non-atlassian-site-url": Case({"JIRA_SITE_URL": "https://jira.acme.com", "JIRA_ALLOW_LOCAL": None},
                                   ("https://jira.acme.com", "not a Jira Cloud site URL")),
    "browser-url-as-site-url": Case({"JIRA_SITE_URL": "https://acme.atlassian.net/jira/software/projects/OPS",
                                     "JIRA_ALLOW_LOCAL": None}, ("/jira/software/projects/OPS", "site URL")),
    "site-url-unset": Case({"JIRA_SITE_URL": None}, ("JIRA_SITE_URL",)),
    "unknown-cloud-id": Case({"JIRA_CLOUD_ID": "00000000-0000-0000-0000-000000000000"},
                             ("404", "Site not found")),
    # OAuth client and grant
    "client-secret-unset": Case({"JIRA_CLIENT_SECRET": None}, ("JIRA_CLIENT_SECRET",)),
    "wrong-client-secret": Case({"JIRA_CLIENT_SECRET": "ATOA" + "0" * 60}, ("client id or secret", "401")),
    "wrong-client-id": Case({"JIRA_CLIENT_ID": "not-our-app"}, ("client id or secret",)),
    "client-credentials-with-a-3lo-app": Case({"JIRA_AUTH_METHOD": "client_credentials"},
                                              ("unauthorized_client", "JIRA_CLIENT_ID")),
    "loopback-site-without-allow-local": Case({"JIRA_ALLOW_LOCAL": None}, ("JIRA_ALLOW_LOCAL=1",)),
    "unknown-refresh-token": Case({"JIRA_REFRESH_TOKEN": "rt-typo"}, ("invalid_grant", "auth login")),
    "revoked-grant": Case(needles=("invalid_grant", "revoked", "auth login"), setup=_spent_then_stale),
    "no-refresh-token-at-all": Case({"JIRA_REFRESH_TOKEN": None}, ("no OAuth refresh token", "auth login")),
    # the token store
    "corrupt-token-store": Case(needles=("broken.json", "not a valid token file"),
                                setup=_corrupt_token_store),
    "token-store-is-a-folder": Case(needles=("tokens-dir", "JIRA_TOKEN_STORE"),
                                    setup=_token_store_is_a_folder),
    "token-store-not-an-object": Case(needles=("odd-tokens.json", "not a valid token file", "an array"),
                                      setup=_token_file("[]")),
    "token-store-of-the-wrong-types": Case(needles=("odd-tokens.json", "refresh_token is a number"),
                                           setup=_token_file('{"access_token": "a", "refresh_token": 12345, '
                                                             '"expires_at": 0}')),
    "token-endpoint-answers-a-web-page": Case(needles=("token endpoint", "not JSON", "JIRA_AUTH_BASE_URL"),
                                              setup=_scripted(r"/oauth/token$", LOGIN_PAGE)),
    "token-endpoint-expiry-not-a-number": Case(
        needles=("token endpoint", "expires_in", "JIRA_AUTH_BASE_URL"),
        setup=_scripted(r"/oauth/token$", (200, {}, {"access_token": "at", "refresh_token": "rt",
                                                     "token_type": "Bearer", "expires_in": "soon"}))),
    "token-store-unsupported-scheme": Case({"JIRA_TOKEN_STORE": "gs://bucket/tokens.json"},
                                           ("gs://bucket/tokens.json", "token store")),
    # API-token auth
    "wrong-api-token": Case({"JIRA_AUTH_METHOD": "api_token", "JIRA_EMAIL": "admin@example.com",
                             "JIRA_API_TOKEN": "ATATT3x-not-the-token"}, ("401", "API token")),
    "api-token-without-email": Case({"JIRA_AUTH_METHOD": "api_token", "JIRA_API_TOKEN": "x" * 24,
                                     "JIRA_EMAIL": None}, ("JIRA_EMAIL",)),
    # scopes and permissions: only the assets that need them fail
    "missing-scope": Case(needles=("users", "read:jira-user", "scope"), names=("users",), bystander=BYSTANDER,
                          setup=_without_user_scope),
    "non-admin-on-admin-only-object": Case(needles=("issue_events", "Administer Jira"),
                                           names=("issue_events",), bystander=BYSTANDER, setup=_non_admin),
    "non-admin-on-admin-audit-log": Case(needles=("audit_records", "Administer Jira"),
                                         names=("audit_records",), partition=YESTERDAY, setup=_non_admin),
    # the extraction scope, checked against Jira before anything is written
    "unknown-project": Case({"JIRA_PROJECTS": "NOPE"}, ("NOPE", "does not exist"), names=("issues",),
                            partition=YESTERDAY),
    "malformed-jql": Case({"JIRA_JQL_FILTER": "status = = Done"}, ("JIRA_JQL_FILTER", "status = = Done"),
                          names=("issues",), partition=YESTERDAY),
    "jql-unknown-value": Case({"JIRA_JQL_FILTER": "status = Nonexistent"}, ("JIRA_JQL_FILTER", "Nonexistent"),
                              names=("issues",), partition=YESTERDAY),
    "jql-unknown-field": Case({"JIRA_JQL_FILTER": "flavour = vanilla"}, ("JIRA_JQL_FILTER", "flavour"),
                              names=("issues",), partition=YESTERDAY),
    "unknown-field-to-include": Case({"JIRA_INCLUDE_FIELDS": "Story Pointz"},
                                     ("JIRA_INCLUDE_FIELDS", "Story Pointz"), names=("issues",),
                                     partition=YESTERDAY),
    # capture dates and order of materialization
    "snapshot-for-a-past-date": Case(needles=("snapshot", "2026-01-05", TODAY), partition="2026-01-05",
                                     names=("projects",)),
    "children-before-their-issues": Case(needles=("jira/raw/issues", "never written", "2026-01-07"),
                                         names=("issue_comments",), partition="2026-01-07", named=False),
    # answers from Jira that are not what they should be (persistently: the client's retries do not help)
    "malformed-json": Case(needles=("project/search", "malformed JSON"), bystander=BYSTANDER,
                           setup=_scripted(r"/project/search$", (200, {}, b'{"values": [{"id": "1"'))),
    "html-error-page": Case(needles=("project/search", "502", "Bad Gateway"), bystander=BYSTANDER,
                            setup=_scripted(r"/project/search$", HTML_502)),
    "html-login-page-with-200": Case(needles=("project/search", "expected JSON, got HTML"),
                                     bystander=BYSTANDER, setup=_scripted(r"/project/search$", LOGIN_PAGE)),
    "json-of-another-shape": Case(needles=("project/search", "expected 'values'"), bystander=BYSTANDER,
                                  setup=_scripted(r"/project/search$", (200, {}, {"message": "hello"}))),
    "json-list-instead-of-page": Case(needles=("project/search", "expected an object"), bystander=BYSTANDER,
                                      setup=_scripted(r"/project/search$", (200, {}, [1, 2, 3]))),
    "empty-200-for-a-bare-array": Case(needles=("/status", "empty answer"), names=("workflow_statuses",),
                                       bystander=BYSTANDER, setup=_scripted(r"/status$", (200, {}, b""))),
    "error-object-200-for-a-keyed-list": Case(
        needles=("issueLinkType", "error object", "Internal error"), names=("issue_link_types",),
        bystander=BYSTANDER, setup=_scripted(r"/issueLinkType$", (200, {}, {"errorMessages": ["Internal error"],
                                                                             "errors": {}}))),
    "error-object-200-for-a-bare-array": Case(
        needles=("projectCategory", "error object", "Something broke"), names=("project_categories",),
        bystander=BYSTANDER, setup=_scripted(r"/projectCategory$", (200, {}, {"errorMessages": ["Something broke"]}))),
    "array-instead-of-an-object": Case(needles=("serverInfo", "expected a JSON object"), names=("server_info",),
                                       bystander=BYSTANDER, setup=_scripted(r"/serverInfo$", (200, {}, [1, 2]))),
    "empty-200-for-a-map": Case(needles=("mypermissions", "empty answer"), names=("permissions",),
                                bystander=BYSTANDER, setup=_scripted(r"/mypermissions$", (200, {}, b""))),
    "issue-without-an-id": Case(needles=("search/jql", "an issue with no id"), names=("issues",),
                                partition=YESTERDAY,
                                setup=_scripted(r"/search/jql$", (200, {}, {"issues": [None], "isLast": True}))),
    "issue-id-not-a-number": Case(needles=("search/jql", "id is str 'abc'"), names=("issues",), partition=YESTERDAY,
                                  setup=_scripted(r"/search/jql$", (200, {}, {"issues": [{"id": "abc"}],
                                                                              "isLast": True}))),
    "rate-limited-for-an-hour": Case(needles=("project/search", "429", "3600"), bystander=BYSTANDER,
                                     setup=_scripted(r"/project/search$", (429, {"Retry-After": "3600"}))),
}


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_a_run_time_mistake_fails_its_asset_in_one_line_and_spares_the_others(case, site, env, tmp_path):
    spec = RUN_CASES[case]
    changes = dict(spec.changes)
    if spec.setup:
        changes.update(spec.setup(site, env, tmp_path))
    names = list(spec.names) + ([spec.bystander] if spec.bystander else [])
    with environment({**env, **changes}):
        result = materialize(names, spec.partition)
    failed = failures(result)
    assert set(failed) == set(spec.names), failed
    for name in spec.names:
        assert_one_clear_line(failed[name], *((name,) if spec.named else ()), *spec.needles)
        if spec.nothing_written:  # no file at a final path (an empty folder may stay)
            assert not visible_parquet_paths(lake(env) / "jira" / "raw" / name), f"{name} wrote something"
    if spec.bystander:
        from jira_assets.catalog import get

        landed = stored(lake(env), get(spec.bystander), TODAY)
        assert landed.num_rows == len(site.truth.records(spec.bystander))


BAD_ANSWERS_FOR_A_GOOD_PARTITION = {
    "issue_types": (r"/issuetype$", (200, {}, b"")),
    "issue_link_types": (r"/issueLinkType$", (200, {}, {"errorMessages": ["Internal error"]})),
    "projects": (r"/project/search$", (200, {}, {"errorMessages": ["Internal error"], "errors": {}})),
    "users": (r"/users/search$", (200, {}, {"errorMessages": ["Internal error"]})),
    "myself": (r"/myself$", (200, {}, [])),
}


@pytest.mark.parametrize("name", sorted(BAD_ANSWERS_FOR_A_GOOD_PARTITION))
def test_an_empty_or_error_shaped_answer_never_replaces_a_good_partition(name, site, env):
    """A 200 that carries no data (an empty body, Jira's error object, the wrong shape) once landed as zero
    rows over yesterday's good capture of today; it must fail and leave the stored rows as they were."""
    from jira_assets.catalog import get

    path, answer = BAD_ANSWERS_FOR_A_GOOD_PARTITION[name]
    with environment(env):
        assert not failures(materialize([name], TODAY))
        before = stored(lake(env), get(name), TODAY)
        assert before.num_rows > 0
        site.script(path, [answer] * 40)
        failed = failures(materialize([name], TODAY))
    assert set(failed) == {name}
    assert_one_clear_line(failed[name], name)
    assert stored(lake(env), get(name), TODAY).equals(before)


def test_a_site_url_holding_a_password_is_refused_without_showing_it(site, env):
    password = "hunter2secretpw"
    url = f"https://bob:{password}@acme.atlassian.net"
    with environment({**env, "JIRA_SITE_URL": url, "JIRA_ALLOW_LOCAL": None}):
        result = materialize(["projects"], TODAY)
    failed = failures(result)
    assert_one_clear_line(failed["projects"], "projects", "user name or password")
    shown = "".join(str(event) for event in result.all_events)
    assert password not in shown and password not in failed["projects"]


def test_credentials_pasted_with_surrounding_whitespace_still_work(site, env):
    names = ("JIRA_CLIENT_ID", "JIRA_CLIENT_SECRET", "JIRA_REFRESH_TOKEN", "JIRA_CLOUD_ID")
    padded = {name: f" {env[name]}\n" for name in names}
    from jira_assets.catalog import get

    with environment({**env, **padded}):
        assert not failures(materialize(["projects"], TODAY))
    assert stored(lake(env), get("projects"), TODAY).num_rows == len(site.truth.records("projects"))


def test_a_credential_with_whitespace_inside_is_named_not_shown(site, env):
    broken = env["JIRA_CLIENT_SECRET"][:10] + " " + env["JIRA_CLIENT_SECRET"][10:]
    with environment({**env, "JIRA_CLIENT_SECRET": broken}):
        failed = failures(materialize(["projects"], TODAY))
    assert_one_clear_line(failed["projects"], "projects", "JIRA_CLIENT_SECRET", "whitespace inside")
    assert env["JIRA_CLIENT_SECRET"][10:] not in failed["projects"]


def test_demo_options_out_of_range_are_refused_by_name():
    done = subprocess.run([sys.executable, "-m", "jira_assets.cli", "demo", "--days", "-3"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2 and "--days" in done.stderr and "less than 0" in done.stderr


def test_an_expired_refresh_token_says_to_log_in_again(tmp_path, monkeypatch):
    """Unused for more than 90 days: Atlassian's inactivity expiry (its own simulator: the clock jumps)."""
    fast_client_retries(monkeypatch)
    with Simulator(SimulatorConfig(seed=3, issues=5)) as sim:
        env = jira_env(sim.info(), tmp_path / "lake", tmp_path)
        sim.clock.advance(91 * 86400)
        with environment(env):
            failed = failures(materialize(["projects"], TODAY))
    assert_one_clear_line(failed["projects"], "projects", "invalid_grant", "auth login")


@pytest.mark.parametrize("key", ["2026-13-45", "yesterday", "2025-06-01", "2099-01-01"])
def test_an_invalid_partition_key_is_refused_in_one_line_naming_it(key, env):
    with environment(env):
        with pytest.raises(Exception) as error:
            materialize(["issues"], key)
    assert_one_clear_line(str(error.value), key, "partition")


# ---- storage -----------------------------------------------------------------------------------------------


def s3_env(s3_server: str, bucket: str, **more: str) -> dict:
    return {"JIRA_LAKE": f"s3://{bucket}/lake", "JIRA_S3_ENDPOINT_URL": s3_server, "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", **more}


def test_an_s3_bucket_that_does_not_exist_is_named(env, s3_server):
    missing = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    with environment({**env, **s3_env(s3_server, missing)}):
        failed = failures(materialize(["projects"], TODAY))
    assert_one_clear_line(failed["projects"], "jira/raw/projects", missing, "does not exist")


def test_an_s3_token_store_that_cannot_work_is_named_before_a_refresh_token_is_spent(site, env, s3_server,
                                                                                  s3_bucket):
    import boto3

    aws = s3_env(s3_server, s3_bucket, AWS_ENDPOINT_URL_S3=s3_server)
    aws.pop("JIRA_LAKE"), aws.pop("JIRA_S3_ENDPOINT_URL")
    refreshes = site.stats()["token_refreshes"]
    missing = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    with environment({**env, **aws, "JIRA_TOKEN_STORE": f"s3://{missing}/jira/tokens.json"}):
        failed = failures(materialize(["projects"], TODAY))
    assert_one_clear_line(failed["projects"], "projects", f"s3://{missing}/jira/tokens.json", "NoSuchBucket")
    assert site.stats()["token_refreshes"] == refreshes, "no refresh token was spent"

    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").put_object(
        Bucket=s3_bucket, Key="jira/tokens.json", Body=b'{"access_token": "abc", "refresh')
    with environment({**env, **aws, "JIRA_TOKEN_STORE": f"s3://{s3_bucket}/jira/tokens.json"}):
        failed = failures(materialize(["projects"], TODAY))
    assert_one_clear_line(failed["projects"], "projects", "tokens.json", "not a valid token file")


@pytest.fixture
def moto_iam_enforced(s3_server):
    """moto checks IAM from now on; yields (read-only access key, secret) of a user that may list and read
    the bucket but not write. Restored afterwards (the moto server is shared by the session)."""
    import boto3
    import requests

    iam = boto3.client("iam", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    user = f"reader-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "s3:ListBucket", "s3:GetObject", "s3:ListBucketMultipartUploads"]}]}
    iam.put_user_policy(UserName=user, PolicyName="read-only", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    requests.post(f"{s3_server}/moto-api/reset-auth", data=b"0", timeout=10)
    try:
        yield key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        requests.post(f"{s3_server}/moto-api/reset-auth", data=b"inf", timeout=10)


def test_s3_access_denied_and_unknown_credentials_are_named(env, s3_server, s3_bucket, moto_iam_enforced):
    key_id, secret = moto_iam_enforced
    with environment({**env, **s3_env(s3_server, s3_bucket, AWS_ACCESS_KEY_ID=key_id,
                                      AWS_SECRET_ACCESS_KEY=secret)}):
        denied = failures(materialize(["projects"], TODAY))
    assert_one_clear_line(denied["projects"], "jira/raw/projects", s3_bucket, "access denied")
    with environment({**env, **s3_env(s3_server, s3_bucket, AWS_ACCESS_KEY_ID="AKIANOTAREALKEY00000")}):
        unknown = failures(materialize(["projects"], TODAY))
    assert_one_clear_line(unknown["projects"], "jira/raw/projects", "invalid AWS credentials")


def test_a_wrong_kms_key_is_named_and_a_right_one_is_used_for_every_object(env, s3_server, s3_bucket,
                                                                           monkeypatch):
    """moto accepts any KMS key id, so AWS's answer to a key that does not exist (KMS.NotFoundException on the
    upload) is given at the botocore layer; that the configured key is sent with every object is checked on
    moto itself."""
    import boto3
    import botocore.client
    from botocore.exceptions import ClientError

    bad = "arn:aws:kms:us-east-1:123456789012:key/00000000-dead-beef-0000-000000000000"
    real_call = botocore.client.BaseClient._make_api_call

    def aws_like(self, operation, params):
        if operation in ("CreateMultipartUpload", "PutObject") and params.get("SSEKMSKeyId") == bad:
            raise ClientError({"Error": {"Code": "KMS.NotFoundException", "Message": f"Invalid keyId {bad}"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)
        return real_call(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", aws_like)
    with environment({**env, **s3_env(s3_server, s3_bucket, JIRA_S3_KMS_KEY_ID=bad)}):
        failed = failures(materialize(["projects"], TODAY))
    assert_one_clear_line(failed["projects"], "jira/raw/projects", "KMS key", bad)

    kms = boto3.client("kms", endpoint_url=s3_server, region_name="us-east-1")
    good = kms.create_key(Description="lake")["KeyMetadata"]["Arn"]
    with environment({**env, **s3_env(s3_server, s3_bucket, JIRA_S3_KMS_KEY_ID=good)}):
        assert not failures(materialize(["projects", BYSTANDER], TODAY))
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert len(keys) == 2
    for key in keys:
        head = s3.head_object(Bucket=s3_bucket, Key=key)
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", good)


def test_a_lake_path_through_a_file_is_named(env, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with environment({**env, "JIRA_LAKE": str(tmp_path / "a-file" / "lake")}):
        result = materialize(["projects"], TODAY)
        failed = failures(result)
    assert_one_clear_line(failed["projects"], "jira/raw/projects", "a-file",
                          "a file is in the way where a folder is needed")
    assert step_retries(result) == []  # no retry moves a file


def test_a_damaged_upstream_file_fails_its_reader_once_naming_the_file(site, env):
    """A truncated upstream Parquet file (copied by hand, a disk error) cannot be read by another attempt: the
    step that reads it fails at once, naming the file and the cause (it once retried twice and then ended in
    "Exceeded max_retries" with pyarrow's error deep in a trace)."""
    with environment(env):
        assert not failures(materialize(["issues"], YESTERDAY))
        part = lake(env) / "jira" / "raw" / "issues" / f"date={YESTERDAY}" / "part-00000.parquet"
        data = part.read_bytes()
        part.write_bytes(data[: len(data) // 2])
        result = materialize(["issue_comments"], YESTERDAY)
    assert_one_clear_line(failures(result)["issue_comments"], f"input jira/raw/issues: cannot read {part}: "
                          "not a readable Parquet file (Parquet magic bytes not found")
    assert step_retries(result) == []



def test_a_file_damaged_past_its_footer_fails_its_readers_once_naming_the_file(site, env):
    """The footer reads (the store checks it) but the column data does not decode: pyarrow's error names no file,
    so the child asset and the mart reading it must, each in one line, without retrying."""
    import dagster as dg

    from jira_assets.definitions import defs

    with environment(env):
        assert not failures(materialize(["issues"], YESTERDAY))
        part = lake(env) / "jira" / "raw" / "issues" / f"date={YESTERDAY}" / "part-00000.parquet"
        data = bytearray(part.read_bytes())
        for i in range(200, len(data) // 2):  # scramble the column chunks, keep the footer
            data[i] = (data[i] * 7 + 13) % 256
        part.write_bytes(bytes(data))
        child = materialize(["issue_comments"], YESTERDAY)
        d = defs()
        marts = [dg.AssetKey(["jira", "marts", n]) for n in ("deleted_issues", "issues_current")]
        mart = dg.materialize([a for a in d.assets if isinstance(a, dg.AssetsDefinition)], resources=d.resources,
                              selection=marts,
                              instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    for result, name in ((child, "issue_comments"), (mart, "issues_current")):
        assert_one_clear_line(failures(result)[name], f"{name}: cannot read {part}: not a readable Parquet file (")
        assert step_retries(result) == []

def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


def run_in_namespace(mounts: str, spec: dict) -> dict:
    """Run fault_materialize in a user+mount namespace after `mounts` (shell); its loopback is ours."""
    command = (f"{mounts} && exec {sys.executable} -m jira_assets_tests.fault_materialize "
               f"'{json.dumps(spec)}'")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", command], cwd=ROOT, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no result (exit {done.returncode}):\n{done.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unshare -rm to mount a small or read-only tmpfs")
def test_a_full_disk_and_a_read_only_folder_are_named_while_small_assets_land(env, tmp_path):
    full, read_only = tmp_path / "full", tmp_path / "ro"
    full.mkdir(), read_only.mkdir()
    day = YESTERDAY  # issues of a day with their JSON (about 70 KiB) do not fit the 32 KiB the folder holds
    spec = {"env": {**env, "JIRA_LAKE": str(full)}, "runs": [
        {"names": ["issues"], "partition": day},
        {"names": ["projects"], "partition": TODAY},
        {"names": ["projects"], "partition": TODAY, "env": {"JIRA_LAKE": str(read_only)}}]}
    mounts = f"mount -t tmpfs -o size=32k tmpfs {full} && mount -t tmpfs -o size=64k,ro tmpfs {read_only}"
    too_big, small, refused = run_in_namespace(mounts, spec)["runs"]
    assert set(too_big["failures"]) == {"issues"}, too_big
    assert_one_clear_line(too_big["failures"]["issues"], "jira/raw/issues", "disk full")
    assert too_big["files"] == [] and too_big["corrupt"] == []  # nothing partial at a final path
    assert small["failures"] == {}, "a small asset still lands: the failed write was cleaned up"
    assert small["files"] == [f"jira/raw/projects/date={TODAY}/part-00000.parquet"] and small["corrupt"] == []
    assert_one_clear_line(refused["failures"]["projects"], "jira/raw/projects", "not writable", "read-only")


# ---- data that is odd but legitimate lands, losslessly -----------------------------------------------------


def test_unexpected_field_types_and_a_5_mb_value_land_losslessly(site, env):
    """A number field holding text, a date holding a number, a select holding a bare string, a user field
    holding a list, and a 5 MB description: no failure, typed cells null where they cannot hold the value,
    everything in fields_json, the mismatches counted on the materialization."""
    at = dt.datetime.combine(today() - dt.timedelta(days=1), dt.time(3), tzinfo=dt.timezone.utc)
    odd = {"customfield_10016": "three", "customfield_10032": 1735880410400,
           "customfield_10033": "plain text", "customfield_10035": [{"accountId": "a"}, {"accountId": "b"}],
           "customfield_10028": {"value": 1.5}}
    huge = "x" * (5 * 1024 * 1024)
    issues = site.truth.issues()
    site.mutate.update_issue(issues[0]["id"], at=at, **odd)
    site.mutate.update_issue(issues[1]["id"], at=at, description=huge)
    with environment(env):
        result = materialize(["issues"], YESTERDAY)
    assert failures(result) == {}
    from jira_assets.catalog import get

    table = stored(lake(env), get("issues"), YESTERDAY)
    rows = {str(r["id"]): r for r in table.to_pylist()}
    stored_fields = orjson.loads(rows[str(issues[0]["id"])]["fields_json"])
    assert {k: stored_fields[k] for k in odd} == odd
    assert rows[str(issues[0]["id"])]["story_point_estimate"] is None
    assert rows[str(issues[1]["id"])]["description"] == huge
    [event] = result.asset_materializations_for_node("jira__raw__issues")
    assert event.metadata["jira/type_mismatches"].value
