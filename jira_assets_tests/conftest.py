"""Shared fixtures: a real simulator over HTTP and a real S3 (moto's threaded server)."""
from __future__ import annotations

import pytest


@pytest.fixture
def simulator():
    """A small seeded Jira Cloud simulator on a free loopback port."""
    from jira_assets.simulator import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(seed=7, issues=120)) as sim:
        yield sim


@pytest.fixture
def jira_env(simulator, tmp_path, monkeypatch):
    """The product pointed at the simulator through the same environment variables a deployment sets;
    yields the local lake folder."""
    from jira_assets.demo import demo_environment

    lake = tmp_path / "lake"
    env = demo_environment(simulator.info(), str(lake), tmp_path, "2026-01-01")
    env.pop("JIRA_HISTORY_START")  # partitions are fixed at import; the default start covers every test day
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return lake


@pytest.fixture(scope="session")
def s3_server():
    """moto's threaded S3 server on loopback; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch):
    """A fresh bucket on the moto server, with dummy credentials in the environment."""
    import uuid

    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name
