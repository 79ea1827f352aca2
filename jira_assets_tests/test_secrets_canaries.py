"""R5 — secrets: no client secret, refresh token, access token or API token is readable anywhere.

Canaries: the simulator's client secret and API token (and the Basic header built from it), and a marker the
simulator puts into every access and refresh token it issues (`token_marker`), plus the exact value of every
token it issued. Runs go the way a deployment runs them: a separate process, Python logging and Dagster's
console at DEBUG (requests-oauthlib then logs whole token requests and responses), a persistent Dagster
instance in a temporary DAGSTER_HOME (event log, compute logs), access tokens living 2 s (so they rotate
during the runs), and errors whose bodies echo the client secret or the API token. Then every place is
searched: the process's stdout and stderr, every file of DAGSTER_HOME, every event log record, the webserver's
GraphQL answers (runs, run config, event logs, captured compute logs, asset metadata, resource config), every
Parquet file (bytes, values, metadata), the error messages, and the token store's neighbours. The token file
itself must be 0600 (and is the one place the canary must be found: a positive control of the search).
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import importlib.util
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import dagster as dg
import orjson
import pyarrow.parquet as pq
import pytest

from jira_assets.simulator import Simulator, SimulatorConfig

from .fault_harness import environment, jira_env, today

ROOT = Path(__file__).resolve().parents[1]
TODAY = today().isoformat()
YESTERDAY = (today() - dt.timedelta(days=1)).isoformat()
MARK = "cnry" + uuid.uuid4().hex[:12]


def _webserver_script():
    spec = importlib.util.spec_from_file_location("screenshot_asset_graph",
                                                  ROOT / "scripts" / "screenshot_asset_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Canaries:
    def __init__(self, sim: Simulator) -> None:
        info = sim.info()
        self.sim = sim
        basic = base64.b64encode(f"{info['email']}:{info['api_token']}".encode()).decode()
        self.static = {"client secret": info["client_secret"], "API token": info["api_token"],
                       "Basic header": basic, "token marker": MARK}

    def values(self) -> dict[str, str]:
        """Every canary: the static ones, and each token the simulator issued so far (with its pieces)."""
        found = dict(self.static)
        auth = self.sim.site.auth
        for n, token in enumerate(list(auth._refresh)):
            found[f"refresh token {n}"] = token
        for n, token in enumerate(list(auth._access)):
            found[f"access token {n}"] = token
            found[f"access token {n} signature"] = token.rsplit(".", 1)[-1]
        return found

    def find(self, text: str | bytes, where: str) -> list[str]:
        data = text.encode() if isinstance(text, str) else text
        return [f"{name} in {where}" for name, value in self.values().items() if value.encode() in data]


def files_under(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield path


def parquet_text(path: Path) -> bytes:
    """Everything a reader of a Parquet file gets: values, schema and file metadata."""
    parquet = pq.ParquetFile(path)
    metadata = parquet.metadata.metadata or {}
    table = parquet.read()
    return b"\n".join([
        orjson.dumps(table.to_pylist(), default=str),
        str(parquet.schema_arrow).encode(),
        b"".join(k + b"=" + v for k, v in metadata.items()),
    ])


@contextlib.contextmanager
def webserver_on(home: Path, env: dict) -> Iterator[str]:
    """dagster-webserver over the given instance (the helper in scripts/ makes its own DAGSTER_HOME)."""
    script = _webserver_script()
    port = script.free_port()
    log = open(home / "webserver.log", "wb")
    binary = Path(sys.executable).with_name("dagster-webserver")
    process = subprocess.Popen(
        [str(binary), "-m", "jira_assets.definitions", "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT,
        env={**os.environ, **env, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT)}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        script._wait_until_loaded(base_url, process, home / "webserver.log", 180)
        yield base_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its own process group: the server and its code server
        process.wait(timeout=30)
        log.close()


RUNS = """{ runsOrError { ... on Runs { results { runId status runConfigYaml tags { key value }
  assetSelection { path } } } } }"""
LOGS = """query($runId: ID!) { logsForRun(runId: $runId, limit: 100000) { __typename
  ... on EventConnection { events { __typename
    ... on MessageEvent { message level stepKey }
    ... on ExecutionStepFailureEvent { error { message stack causes { message stack } } }
    ... on MaterializationEvent { metadataEntries { label description
      ... on TextMetadataEntry { text } ... on JsonMetadataEntry { jsonString }
      ... on PathMetadataEntry { path } ... on MarkdownMetadataEntry { mdStr } } }
    ... on LogsCapturedEvent { fileKey stepKeys } } }
  ... on PythonError { message } } }"""
CAPTURED = """query($key: [String!]!) { capturedLogs(logKey: $key) { stdout stderr } }"""
ASSETS = """{ assetNodes { assetKey { path } assetMaterializations(limit: 5) { runId
  metadataEntries { label ... on TextMetadataEntry { text } ... on JsonMetadataEntry { jsonString } } } } }"""
RESOURCE = """query($selector: ResourceSelector!) {
  topLevelResourceDetailsOrError(resourceSelector: $selector) {
  ... on ResourceDetails { configuredValues { key value type } } ... on PythonError { message } } }"""


def graphql_everything(base_url: str) -> list[str]:
    """The raw text of GraphQL answers about every run: config, tags, events, compute logs, metadata."""
    graphql = _webserver_script().graphql
    raw: list[str] = []
    runs = graphql(base_url, RUNS, raw=raw)["runsOrError"]["results"]
    assert runs, "the webserver should show the runs of the instance"
    for run in runs:
        logs = graphql(base_url, LOGS, {"runId": run["runId"]}, raw=raw)["logsForRun"]
        assert logs["__typename"] == "EventConnection", logs
        for event in logs["events"]:
            if event["__typename"] == "LogsCapturedEvent":
                key = [run["runId"], "compute_logs", event["fileKey"]]
                graphql(base_url, CAPTURED, {"key": key}, raw=raw)
    graphql(base_url, ASSETS, raw=raw)
    entries = graphql(base_url, _webserver_script().LOCATIONS)["workspaceOrError"]["locationEntries"]
    selector = {"repositoryLocationName": entries[0]["name"], "repositoryName": "__repository__",
                "resourceName": "jira"}
    graphql(base_url, RESOURCE, {"selector": selector}, raw=raw)
    return raw


class Recorder(BaseHTTPRequestHandler):
    """Another host on loopback: records every request it gets."""

    seen: list = []

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                "body": self.rfile.read(length).decode("utf-8", "replace")})
        body = b'{"access_token": "stolen", "refresh_token": "stolen", "expires_in": 3600, "values": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _any

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def other_host():
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Recorder.seen
    server.shutdown()
    server.server_close()


def run_verbose(spec: dict, home: Path) -> subprocess.CompletedProcess:
    """fault_materialize in its own process, DEBUG logging, runs recorded in DAGSTER_HOME=home."""
    spec = {**spec, "verbose": True}
    return subprocess.run([sys.executable, "-m", "jira_assets_tests.fault_materialize", json.dumps(spec)],
                          cwd=ROOT, capture_output=True, timeout=300,
                          env={**os.environ, **spec["env"], "DAGSTER_HOME": str(home),
                               "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_no_secret_is_readable_in_logs_events_ui_parquet_errors_or_beside_the_token_file(tmp_path, capsys):
    home, lake, tokens = tmp_path / "dagster_home", tmp_path / "lake", tmp_path / "secrets" / "tokens.json"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    config = SimulatorConfig(seed=9, issues=40, days=3, access_token_ttl=2, token_marker=MARK)
    with Simulator(config) as sim:
        canaries = Canaries(sim)
        info = sim.info()
        env = jira_env(info, lake, tmp_path, JIRA_TOKEN_STORE=str(tokens))
        # Error bodies that echo secrets back (a token endpoint quoting the client secret, Jira quoting the
        # credentials it refused): what the product repeats of them must be scrubbed.
        echo_secret = {"error": "access_denied",
                       "error_description": f"bad client_secret {info['client_secret']}"}
        sim.script(r"^/oauth/token$", [(401, {}, echo_secret)])
        echo_api_token = {"errorMessages": [f"Authorization: Basic {canaries.static['Basic header']} and "
                                            f"api_token={info['api_token']} refused"]}
        sim.script(r"/rest/api/2/issuetype$", [(400, {}, echo_api_token)] * 20)
        api_token_env = {"JIRA_AUTH_METHOD": "api_token", "JIRA_EMAIL": info["email"],
                         "JIRA_API_TOKEN": info["api_token"]}
        spec = {"env": env, "runs": [
            {"names": ["projects"], "partition": TODAY},  # fails: the token endpoint echoes the client secret
            {"names": ["projects", "users", "issue_fields", "myself", "server_info"], "partition": TODAY},
            {"names": ["issues", "issue_comments", "issue_changelogs", "issue_worklogs"],
             "partition": YESTERDAY},
            # issue_types fails: Jira echoes the API token
            {"names": ["issue_types", "groups"], "partition": TODAY, "env": api_token_env},
        ]}
        done = run_verbose(spec, home)
        assert "RESULT " in done.stdout.decode(), done.stderr.decode()[-3000:]
        result = json.loads(done.stdout.decode().split("RESULT ", 1)[1])
        first, good, incremental, api = result["runs"]
        assert set(first["failures"]) == {"projects"}
        assert "client id or secret" in first["failures"]["projects"]
        assert good["failures"] == {} and incremental["failures"] == {}
        assert set(api["failures"]) == {"issue_types"}
        issued = sim.stats()["tokens_issued"]
        assert issued >= 3, "access tokens should have rotated during the runs"

        leaks: list[str] = []
        leaks += canaries.find(done.stdout, "stdout") + canaries.find(done.stderr, "stderr")
        for run in result["runs"]:
            for name, message in run["failures"].items():
                leaks += canaries.find(message, f"the error message of {name}")
        for path in files_under(home):
            leaks += canaries.find(path.read_bytes(), f"DAGSTER_HOME/{path.relative_to(home)}")
        with environment({"DAGSTER_HOME": str(home)}), dg.DagsterInstance.get() as instance:
            records = instance.get_run_records()
            assert len(records) == 4
            compute_logs = 0
            for record in records:
                for entry in instance.all_logs(record.dagster_run.run_id):
                    leaks += canaries.find(dg.serialize_value(entry),
                                           f"event log of run {record.dagster_run.run_id}")
                leaks += canaries.find(dg.serialize_value(record.dagster_run), "a run record")
            compute_logs = sum(1 for p in files_under(home / "storage") if p.suffix in (".out", ".err"))
        assert compute_logs, "the runs' compute logs should be in DAGSTER_HOME"
        parquet_files = [p for p in files_under(lake) if p.suffix == ".parquet"]
        assert len(parquet_files) >= 8
        for path in parquet_files:
            leaks += canaries.find(path.read_bytes(), str(path.relative_to(lake)))
            leaks += canaries.find(parquet_text(path), f"the contents of {path.relative_to(lake)}")
        neighbours = [p for p in files_under(tokens.parent) if p != tokens]
        for path in neighbours:
            leaks += canaries.find(path.read_bytes(), f"the token store's neighbour {path.name}")
        assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
        assert MARK.encode() in tokens.read_bytes(), "positive control: the search finds a canary where it is"

        status = subprocess.run([sys.executable, "-m", "jira_assets.cli", "auth", "status"], cwd=ROOT,
                                capture_output=True, timeout=120,
                                env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
        assert b"site check" in status.stdout or b"site:" in status.stdout, status.stdout + status.stderr
        leaks += canaries.find(status.stdout + status.stderr, "`jira-assets auth status`")

        with webserver_on(home, env) as base_url:
            answers = graphql_everything(base_url)
        for n, text in enumerate(answers):
            leaks += canaries.find(text, f"GraphQL answer {n}")
        assert not leaks, "\n".join(leaks)
        searched = {"canaries": len(canaries.values()), "tokens_issued": issued,
                    "dagster_home_files": len(list(files_under(home))), "run_records": len(records),
                    "compute_log_files": compute_logs, "parquet_files": len(parquet_files),
                    "graphql_answers": len(answers), "graphql_bytes": sum(len(a) for a in answers),
                    "stdout_stderr_bytes": len(done.stdout) + len(done.stderr), "leaks": 0}
    with capsys.disabled():
        print(f"\n[R5 secrets] {searched}")
