"""Resources: the Jira client as a `JiraCloudResource`, and the Parquet IO manager, built from the environment.

Secrets reach the resource only as `dg.EnvVar`, so the UI, GraphQL and run config show variable names, never
values.
"""
from __future__ import annotations

import os
from typing import Literal, Optional

import dagster as dg
from pydantic import PrivateAttr

from jira_assets.extract import ExtractSettings
from jira_assets.jira import (
    ApiToken,
    ClientCredentials,
    JiraClient,
    OAuth3LO,
    RetryPolicy,
    token_store_from_url,
)
from jira_assets.jira.errors import ConfigError
from jira_assets.parquet.io_manager import ParquetIOManager

DEFAULT_TOKEN_STORE = ".jira_assets/tokens.json"
DEFAULT_LAKE = ".jira_assets/lake"


class JiraCloudResource(dg.ConfigurableResource):
    """Jira Cloud REST API v2 through OAuth 2.0 (3LO), an API token, or a service account."""

    site_url: str
    auth_method: Literal["oauth", "api_token", "client_credentials"] = "oauth"
    client_id: Optional[str] = None
    client_secret: Optional[str] = None
    refresh_token: Optional[str] = None  # seeds an empty token store; the store then owns the rotating token
    token_store: str = DEFAULT_TOKEN_STORE  # a path, file://… or s3://bucket/key
    email: Optional[str] = None
    api_token: Optional[str] = None
    scoped_api_token: bool = False
    cloud_id: Optional[str] = None
    api_base_url: str = "https://api.atlassian.com"
    auth_base_url: str = "https://auth.atlassian.com"
    allow_local: bool = False  # allow an http://127.0.0.1 site: the bundled simulator
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0
    max_in_flight: int = 4
    max_attempts: int = 6
    issue_page_size: int = 100
    window_splits: int = 1
    child_workers: int = 4
    projects: list[str] = []
    jql_filter: Optional[str] = None

    _client: Optional[JiraClient] = PrivateAttr(default=None)

    def _auth(self):
        if self.auth_method == "oauth":
            _require(self, "client_id", "client_secret")
            return OAuth3LO(
                client_id=self.client_id,
                client_secret=self.client_secret,
                token_store=token_store_from_url(self.token_store),
                auth_base_url=self.auth_base_url,
                initial_refresh_token=self.refresh_token,
            )
        if self.auth_method == "api_token":
            _require(self, "email", "api_token")
            return ApiToken(self.email, self.api_token, scoped=self.scoped_api_token)
        _require(self, "client_id", "client_secret")
        return ClientCredentials(self.client_id, self.client_secret, auth_base_url=self.auth_base_url)

    def get_client(self) -> JiraClient:
        """One client per process: it holds the in-flight budget and the access token."""
        if self._client is None:
            self._client = JiraClient(
                self.site_url,
                self._auth(),
                api_base_url=self.api_base_url,
                cloud_id=self.cloud_id,
                retry=RetryPolicy(max_attempts=self.max_attempts),
                timeout=(self.connect_timeout_seconds, self.read_timeout_seconds),
                max_in_flight=self.max_in_flight,
                allow_local=self.allow_local,
            )
        return self._client

    def extract_settings(self) -> ExtractSettings:
        return ExtractSettings(
            issue_page_size=self.issue_page_size,
            window_splits=self.window_splits,
            child_workers=self.child_workers,
            projects=tuple(self.projects),
            jql_filter=self.jql_filter,
        )


def _require(resource: JiraCloudResource, *names: str) -> None:
    missing = [n for n in names if not getattr(resource, n)]
    if missing:
        env = ", ".join("JIRA_" + n.upper() for n in missing)
        raise ConfigError(f"auth_method={resource.auth_method!r} needs {', '.join(missing)} (set {env})")


# Environment variable -> resource field. Secrets are passed as EnvVar so they are resolved only at run time.
_SECRET_ENV = {
    "client_secret": "JIRA_CLIENT_SECRET",
    "refresh_token": "JIRA_REFRESH_TOKEN",
    "api_token": "JIRA_API_TOKEN",
}
_PLAIN_ENV = {
    "site_url": "JIRA_SITE_URL",
    "client_id": "JIRA_CLIENT_ID",
    "token_store": "JIRA_TOKEN_STORE",
    "email": "JIRA_EMAIL",
    "cloud_id": "JIRA_CLOUD_ID",
    "api_base_url": "JIRA_API_BASE_URL",
    "auth_base_url": "JIRA_AUTH_BASE_URL",
}
_INT_ENV = {
    "max_in_flight": "JIRA_MAX_IN_FLIGHT",
    "window_splits": "JIRA_WINDOW_SPLITS",
    "child_workers": "JIRA_CHILD_WORKERS",
    "issue_page_size": "JIRA_ISSUE_PAGE_SIZE",
}


def jira_resource_from_env() -> JiraCloudResource:
    kwargs: dict = {"site_url": dg.EnvVar("JIRA_SITE_URL")}
    for field, var in _PLAIN_ENV.items():
        if os.environ.get(var):
            kwargs[field] = dg.EnvVar(var)
    for field, var in _SECRET_ENV.items():
        if os.environ.get(var):
            kwargs[field] = dg.EnvVar(var)
    for field, var in _INT_ENV.items():
        if os.environ.get(var):
            kwargs[field] = dg.EnvVar.int(var)
    if os.environ.get("JIRA_AUTH_METHOD"):  # a Literal field: passed as its value (not a secret)
        kwargs["auth_method"] = os.environ["JIRA_AUTH_METHOD"]
    if os.environ.get("JIRA_ALLOW_LOCAL", "").lower() in ("1", "true", "yes"):
        kwargs["allow_local"] = True
    if os.environ.get("JIRA_PROJECTS"):
        kwargs["projects"] = [p.strip() for p in os.environ["JIRA_PROJECTS"].split(",") if p.strip()]
    if os.environ.get("JIRA_JQL_FILTER"):
        kwargs["jql_filter"] = os.environ["JIRA_JQL_FILTER"]
    return JiraCloudResource(**kwargs)


def io_manager_from_env() -> ParquetIOManager:
    kwargs: dict = {"base_path": os.environ.get("JIRA_LAKE", DEFAULT_LAKE)}
    for field, var in {"s3_endpoint_url": "JIRA_S3_ENDPOINT_URL", "s3_region": "AWS_REGION",
                       "sse_kms_key_id": "JIRA_S3_KMS_KEY_ID", "compression": "JIRA_PARQUET_COMPRESSION"}.items():
        if os.environ.get(var):
            kwargs[field] = os.environ[var]
    return ParquetIOManager(**kwargs)


def resources_from_env() -> dict:
    return {"jira": jira_resource_from_env(), "parquet_io_manager": io_manager_from_env()}
