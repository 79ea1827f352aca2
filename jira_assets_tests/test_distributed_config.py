"""The deploy/ files against the installed Dagster: every key of the production dagster.yaml is one the instance
schema knows (and every configurable class accepts its config), the Celery pieces validate, the Helm values carry
the same limits, and the limits keep the request budget. Fast: no service is started (the slow tests load the same
dagster.yaml on a real Postgres)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PG_ENV = {"DAGSTER_PG_HOST": "db", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USERNAME": "dagster",
          "DAGSTER_PG_PASSWORD": "secret", "DAGSTER_PG_DB": "dagster", "DAGSTER_COMPUTE_LOG_BUCKET": "logs"}


@pytest.fixture
def production_yaml() -> dict:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())


@pytest.fixture
def helm_values() -> dict:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def helm_env(values: dict) -> dict[str, str]:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return {e["name"]: e["value"] for e in deployment["env"]}


def test_the_production_dagster_yaml_validates_against_the_installed_instance_schema(tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef

    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))  # unknown or misspelt keys raise here
    ref = InstanceRef.from_dir(str(tmp_path))
    # each configurable class validates its own block (the storage connects only when used)
    assert type(ref.run_coordinator).__name__ == "QueuedRunCoordinator"
    compute_logs = ref.compute_log_manager
    assert type(compute_logs).__name__ == "S3ComputeLogManager"
    assert compute_logs._s3_bucket == "logs"
    assert ref.storage_data.class_name == "DagsterPostgresStorage"
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def test_the_instance_has_a_queue_a_run_limit_and_a_default_limit_for_the_jira_pool(production_yaml):
    from dagster._core.instance.config import ConcurrencyConfig, validate_concurrency_config

    validate_concurrency_config(production_yaml)  # refuses a run limit set in two places
    concurrency = ConcurrencyConfig.from_concurrency_settings(production_yaml["concurrency"], None)
    assert concurrency.pool_config.default_pool_limit >= 1
    assert production_yaml["concurrency"]["runs"]["max_concurrent_runs"] >= 1
    assert production_yaml["run_coordinator"]["class"] == "QueuedRunCoordinator"


def test_every_raw_asset_is_in_the_pool_and_backfills_days_in_ranges_and_snapshots_one_date_per_run():
    import dagster as dg

    from jira_assets.catalog import get
    from jira_assets.defs.raw import DAYS_PER_RUN, ONE_PARTITION_PER_RUN, POOL, RANGE_BACKFILL, raw_assets

    assert POOL == "jira_api"
    assert DAYS_PER_RUN == 10  # JIRA_DAYS_PER_RUN is not set here
    assert RANGE_BACKFILL == dg.BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN)
    assert ONE_PARTITION_PER_RUN == dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
    for asset in raw_assets:
        incremental = get(asset.key.path[-1]).incremental
        assert asset.backfill_policy == (RANGE_BACKFILL if incremental else ONE_PARTITION_PER_RUN), asset.key
        assert asset.op.pool == POOL, asset.key


def test_the_census_backfills_one_date_per_run_and_open_issues_daily_days_in_ranges():
    """The census, like any snapshot, can only be captured today: a backfill must never build a range of its
    dates. open_issues_daily rebuilds past days from the status history, a range at a time."""
    from jira_assets.defs.marts import issue_id_census, open_issues_daily
    from jira_assets.defs.raw import ONE_PARTITION_PER_RUN, RANGE_BACKFILL

    assert issue_id_census.backfill_policy == ONE_PARTITION_PER_RUN
    assert open_issues_daily.backfill_policy == RANGE_BACKFILL


@pytest.mark.parametrize("value, problem", [("0", "must be at least 1"), ("ten", "is not a whole number"),
                                            ("400", "is more than 366")])
def test_a_days_per_run_that_cannot_work_stops_the_code_location_naming_the_variable(value, problem):
    env = {**os.environ, "JIRA_DAYS_PER_RUN": value}
    done = subprocess.run([sys.executable, "-c", "import jira_assets.definitions"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert f"JIRA_DAYS_PER_RUN={value!r} {problem}" in done.stderr


def test_the_helm_values_carry_the_same_limits_as_the_dagster_yaml_and_keep_the_request_budget(
        production_yaml, helm_values):
    from dagster._core.instance.config import validate_concurrency_config

    extra = helm_values["additionalInstanceConfig"]
    assert extra["concurrency"] == production_yaml["concurrency"]
    assert extra["run_retries"] == production_yaml["run_retries"]
    validate_concurrency_config({**extra, "run_coordinator": {"class": "QueuedRunCoordinator"}})
    assert helm_values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"] == {}
    monitoring = helm_values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"]
    assert monitoring["freeSlotsAfterRunEndSeconds"] == production_yaml["run_monitoring"][
        "free_slots_after_run_end_seconds"]
    assert helm_values["computeLogManager"]["type"] == "S3ComputeLogManager"
    assert helm_values["runLauncher"]["type"] == "K8sRunLauncher"
    assert helm_values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"

    env = helm_env(helm_values)
    pool, per_process, budget = (extra["concurrency"]["pools"]["default_limit"], int(env["JIRA_MAX_IN_FLIGHT"]),
                                 int(env["JIRA_REQUEST_BUDGET"]))
    assert pool * per_process + 1 <= budget  # + 1: the change sensor, which runs outside the pool
    assert env["JIRA_TOKEN_STORE"].startswith("s3://") and env["JIRA_THROTTLE_BOARD"].startswith("s3://")
    (deployment,) = helm_values["dagster-user-deployments"]["deployments"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"]
    assert [s["name"] for s in deployment["envSecrets"]] == ["jira-assets"]
    secret_names = {"JIRA_CLIENT_SECRET", "JIRA_REFRESH_TOKEN", "JIRA_API_TOKEN"}
    assert not secret_names & set(env), "secrets belong in the Secret, not in the values"


def test_the_user_code_command_loads_the_definitions_the_dockerfile_installs():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "pip install '.[k8s,distributed]'" in dockerfile
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "jira_assets.definitions"]
    assert importlib.util.find_spec("jira_assets.definitions") is not None


def test_the_celery_location_and_worker_config_validate(monkeypatch):
    pytest.importorskip("dagster_celery")
    from dagster_celery.cli import get_validated_config

    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "redis://broker:6379/0")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "redis://broker:6379/1")
    worker = get_validated_config(str(DEPLOY / "celery_worker.yaml"))
    assert worker["broker"] == "redis://broker:6379/0" and worker["backend"] == "redis://broker:6379/1"
    assert worker["config_source"]["worker_prefetch_multiplier"] == 1

    # what `python_file: deploy/celery_location.py` in a workspace loads: exactly one target
    from dagster._core.workspace.autodiscovery import loadable_targets_from_python_file

    targets = loadable_targets_from_python_file(str(DEPLOY / "celery_location.py"), working_directory=str(DEPLOY.parent))
    assert [t.attribute for t in targets] == ["defs"]

    spec = importlib.util.spec_from_file_location("celery_location", DEPLOY / "celery_location.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    job = module.defs().resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == "celery"


# A run of the code location's own snapshot job, in a fresh interpreter so its fork server (a process-wide singleton
# that keeps the environment it started with) dies with it.
@pytest.mark.parametrize("execution, start", [
    (None, "forkserver"),
    ({"multiprocess": {"max_concurrent": 2}}, "forkserver"),
    ({"multiprocess": {"start_method": {"spawn": {}}}}, "spawn"),  # a run's own choice wins
    ({"in_process": {}}, None),
])
def test_the_code_locations_executor_takes_the_run_config_of_dagsters_default_executor(execution, start):
    """Runs launched with Dagster's usual execution config (the launchpad, a backfill's run config) still work;
    multiprocess steps fork from the preloaded server unless the run names a start method."""
    import dagster as dg

    from jira_assets.definitions import defs

    job = defs().resolve_job_def("jira_snapshots")
    resolved = dg.validate_run_config(job, {} if execution is None else {"execution": {"config": execution}})
    [config] = resolved["execution"].values()
    if start is None:
        assert list(config) == ["in_process"]
    else:
        assert list(config["multiprocess"]["start_method"]) == [start]
        if start == "forkserver":
            assert "jira_assets.definitions" in config["multiprocess"]["start_method"]["forkserver"]["preload_modules"]


FORKED_RUN = """
import datetime as dt, json, os, sys
import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository

job = ReconstructableRepository.for_module("jira_assets.definitions", "defs").get_reconstructable_job("jira_snapshots")
names = ("server_info", "projects", "issue_types")
with dg.instance_for_test() as instance:
    result = dg.execute_job(job, instance, asset_selection=[dg.AssetKey(["jira", "raw", n]) for n in names],
                            tags={"dagster/partition": dt.datetime.now(dt.timezone.utc).date().isoformat()})
    successes = [e for e in result.all_events if e.is_step_success]
    step_pids = sorted({e.pid for e in successes})
    servers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            parent = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
        except OSError:
            continue
        if parent == os.getpid() and "forkserver" in command:
            servers.append(command)
    print(json.dumps({"success": result.success, "run_pid": os.getpid(), "step_pids": step_pids, "steps": len(successes),
                      "servers": servers}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_runs_steps_are_forked_from_one_server_that_preloaded_the_code_location(simulator, jira_env, tmp_path):
    import json

    done = subprocess.run([sys.executable, "-c", FORKED_RUN], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "DAGSTER_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["success"] is True
    # each step (the three assets and their checks) in a process of its own, none in the run's
    assert report["steps"] >= 3 and len(report["step_pids"]) == report["steps"]
    assert report["run_pid"] not in report["step_pids"]
    assert len(report["servers"]) == 1 and "jira_assets.definitions" in report["servers"][0]
    for name in ("server_info", "projects", "issue_types"):
        assert list((jira_env / "jira" / "raw" / name).rglob("*.parquet")), name
