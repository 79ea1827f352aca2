"""Resources: the Jira client as a `JiraCloudResource`, and the Parquet IO manager, built from the environment.

Secrets reach the resource only as `dg.EnvVar`, so the UI, GraphQL and run config show variable names, never
values.
"""
from __future__ import annotations

import os
import re
from typing import Literal, Optional

import dagster as dg
from pydantic import Field, PrivateAttr

from jira_assets.extract import ExtractSettings
from jira_assets.scope import ENV as SCOPE_ENV
from jira_assets.scope import SCOPED_OBJECTS, ExtractionScope, FieldPolicy
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
    # ---- the extraction scope (jira_assets.scope): issues and their children only ----
    projects: list[str] = Field(
        default=[], description="Project keys or ids to extract issues from (JIRA_PROJECTS); empty = every project "
        "the account can browse.")
    jql_filter: Optional[str] = Field(
        default=None, description="Extra JQL AND-ed to every issue search, e.g. `statusCategory != Done` "
        "(JIRA_JQL_FILTER). Checked against Jira before anything is written; no ORDER BY.")
    include_fields: list[str] = Field(
        default=[], description="Keep only these issue fields (ids or names, e.g. `customfield_10016` or `Story "
        "Points`), plus the ones extraction needs (JIRA_INCLUDE_FIELDS). Empty = every field.")
    exclude_fields: list[str] = Field(
        default=[], description="Drop these issue fields everywhere: columns, fields_json, changelog "
        "(JIRA_EXCLUDE_FIELDS).")
    rename_fields: dict[str, str] = Field(
        default={}, description="Custom field (id or name) or its column -> column name (JIRA_RENAME_FIELDS as "
        "`Story Points=points,...`).")
    mask_fields: list[str] = Field(
        default=[], description="Issue fields replaced by their salted SHA-256 before anything is written: columns, "
        "fields_json, changelog from/to (JIRA_MASK_FIELDS). `comment` / `worklog` hash comment texts.")
    mask_users: bool = Field(
        default=False, description="Hash every user reference (accountId, display name, email) in issues, "
        "changelogs, comments and worklogs (JIRA_MASK_USERS).")
    mask_salt: Optional[str] = Field(
        default=None, description="Secret salt of the masking hash (JIRA_MASK_SALT); required when masking.")

    _client: Optional[JiraClient] = PrivateAttr(default=None)
    _policy: Optional[FieldPolicy] = PrivateAttr(default=None)

    def _auth(self):
        if self.auth_method == "oauth":
            _require(self, "client_id", "client_secret")
            return OAuth3LO(
                client_id=_credential(self, "client_id"),
                client_secret=_credential(self, "client_secret"),
                token_store=token_store_from_url(self.token_store.strip()),
                auth_base_url=self.auth_base_url.strip(),
                initial_refresh_token=_credential(self, "refresh_token"),
            )
        if self.auth_method == "api_token":
            _require(self, "email", "api_token")
            return ApiToken(_credential(self, "email"), _credential(self, "api_token"),
                            scoped=self.scoped_api_token)
        _require(self, "client_id", "client_secret")
        return ClientCredentials(_credential(self, "client_id"), _credential(self, "client_secret"),
                                 auth_base_url=self.auth_base_url.strip())

    def get_client(self) -> JiraClient:
        """One client per process: it holds the in-flight budget and the access token."""
        if self._client is None:
            if not self.site_url:
                raise ConfigError("no Jira site URL: set JIRA_SITE_URL to https://<your-site>.atlassian.net")
            self._client = JiraClient(
                self.site_url,
                self._auth(),
                api_base_url=self.api_base_url.strip(),
                cloud_id=_credential(self, "cloud_id"),
                retry=RetryPolicy(max_attempts=self.max_attempts),
                timeout=(self.connect_timeout_seconds, self.read_timeout_seconds),
                max_in_flight=self.max_in_flight,
                allow_local=self.allow_local,
            )
        return self._client

    def scope(self) -> ExtractionScope:
        """The extraction scope of this run's config, validated offline (raises ScopeError naming the field)."""
        return ExtractionScope(
            projects=tuple(p.strip() for p in self.projects if p.strip()),
            jql_filter=self.jql_filter.strip() if self.jql_filter and self.jql_filter.strip() else self.jql_filter,
            include_fields=tuple(self.include_fields),
            exclude_fields=tuple(self.exclude_fields),
            rename_fields=dict(self.rename_fields),
            mask_fields=tuple(self.mask_fields),
            mask_users=self.mask_users,
            mask_salt=self.mask_salt,
        ).validate()

    def field_policy(self) -> FieldPolicy:
        """The scope checked against Jira (projects, JQL, field names), once per process; nothing is written."""
        if self._policy is None:
            self._policy = self.scope().check(self.get_client())
        return self._policy

    def extract_settings(self, object_name: Optional[str] = None) -> ExtractSettings:
        """Settings for one object; for issues and their children the scope is checked against Jira first."""
        scope = self.scope() if object_name in SCOPED_OBJECTS else None
        return ExtractSettings(
            issue_page_size=self.issue_page_size,
            window_splits=self.window_splits,
            child_workers=self.child_workers,
            projects=scope.projects if scope else tuple(self.projects),
            jql_filter=scope.jql_filter if scope else self.jql_filter,
            policy=self.field_policy() if scope else None,
        )


def _credential(resource: JiraCloudResource, name: str) -> Optional[str]:
    """A credential or id without the whitespace a copy and paste adds around it (a trailing newline from a
    file or `echo`); whitespace inside one cannot be right and is named (never the value: a secret)."""
    value = getattr(resource, name)
    if value is None:
        return None
    value = value.strip()
    if any(char.isspace() for char in value):
        raise ConfigError(f"JIRA_{name.upper()} has whitespace inside it; set it again from the original "
                          "value")
    return value or None


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

_FLAG_ENV = {
    "allow_local": "JIRA_ALLOW_LOCAL",
    "scoped_api_token": "JIRA_SCOPED_API_TOKEN",
}


AUTH_METHODS = ("oauth", "api_token", "client_credentials")


def jira_resource_from_env() -> JiraCloudResource:
    """The resource from JIRA_* variables. Values that cannot work fail here, at load, in one line naming the
    variable (a run would otherwise fail later with a multi-line config or validation dump). An unset
    JIRA_SITE_URL is reported when a run needs the site, so the code location still loads without one."""
    kwargs: dict = {"site_url": dg.EnvVar("JIRA_SITE_URL") if os.environ.get("JIRA_SITE_URL") else ""}
    for field, var in _PLAIN_ENV.items():
        if os.environ.get(var):
            kwargs[field] = dg.EnvVar(var)
    for field, var in _SECRET_ENV.items():
        if os.environ.get(var):
            kwargs[field] = dg.EnvVar(var)
    for field, var in _INT_ENV.items():
        if os.environ.get(var):
            _positive_int(var)
            kwargs[field] = dg.EnvVar.int(var)
    method = os.environ.get("JIRA_AUTH_METHOD", "").strip()
    if method:  # a Literal field: passed as its value (not a secret)
        if method not in AUTH_METHODS:
            raise ConfigError(f"JIRA_AUTH_METHOD={method!r} is not a known auth method; use one of "
                              f"{', '.join(AUTH_METHODS)}")
        kwargs["auth_method"] = method
    for field, var in _FLAG_ENV.items():
        if _flag(var):
            kwargs[field] = True
    kwargs.update(scope_config_from_env())
    return JiraCloudResource(**kwargs)


def _flag(var: str) -> bool:
    value = os.environ.get(var, "").strip().lower()
    if value not in ("", "0", "false", "no", "1", "true", "yes"):
        raise ConfigError(f"{var}={os.environ[var]!r} is neither 1/true/yes nor 0/false/no")
    return value in ("1", "true", "yes")


# Beyond these a value is a typo, and a harmful one (a pool of millions of connections, thousands of threads).
_INT_MAXIMA = {"JIRA_MAX_IN_FLIGHT": 64, "JIRA_WINDOW_SPLITS": 64, "JIRA_CHILD_WORKERS": 64,
               "JIRA_ISSUE_PAGE_SIZE": 5000, "JIRA_DAYS_PER_RUN": 366}


def int_setting(var: str, default: int) -> int:
    """A positive whole-number setting from the environment; unset or blank means the default."""
    return _positive_int(var) if os.environ.get(var, "").strip() else default


def _positive_int(var: str) -> int:
    value = os.environ[var]
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError(f"{var}={value!r} is not a whole number") from None
    if number < 1:
        raise ConfigError(f"{var}={value!r} must be at least 1")
    maximum = _INT_MAXIMA.get(var)
    if maximum is not None and number > maximum:
        raise ConfigError(f"{var}={value!r} is more than {maximum}, the most that makes sense here")
    return number


def scope_config_from_env() -> dict:
    """Resource config for the scope from JIRA_SCOPE_FILE and the JIRA_* variables, validated now (at load):
    a wrong value stops the code location from loading with a message naming the setting and the fix."""
    scope = ExtractionScope.from_env().validate()
    kwargs: dict = {}
    if scope.projects:
        kwargs["projects"] = list(scope.projects)
    if scope.jql_filter:
        kwargs["jql_filter"] = scope.jql_filter
    for name in ("include_fields", "exclude_fields", "mask_fields"):
        if getattr(scope, name):
            kwargs[name] = list(getattr(scope, name))
    if scope.rename_fields:
        kwargs["rename_fields"] = dict(scope.rename_fields)
    if scope.mask_users:
        kwargs["mask_users"] = True
    if os.environ.get(SCOPE_ENV["mask_salt"]):  # a secret: the UI shows the variable's name, not the salt
        kwargs["mask_salt"] = dg.EnvVar(SCOPE_ENV["mask_salt"])
    return kwargs


def jira_run_config(resource: JiraCloudResource, resource_key: str = "jira", **overrides) -> dict:
    """Run config that overrides some of the resource's fields for one run, e.g. the scope.

    Dagster replaces a resource's whole config when run config names it, so this carries every field that is set
    (secrets as `{"env": VAR}`, never values) plus the overrides. Paste its YAML into the Launchpad, or pass it to
    `materialize(..., run_config=...)` / a `RunRequest`.
    """
    fields = type(resource).model_fields
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(f"{', '.join(unknown)}: not a setting of {type(resource).__name__}; "
                          f"known: {', '.join(sorted(fields))}")
    config: dict = {}
    for name, info in fields.items():
        value = getattr(resource, name)
        if isinstance(value, dg.EnvVar) or type(value).__name__ == "IntEnvVar":
            config[name] = {"env": getattr(value, "env_var_name", None) or value.name}
        elif value is not None and value != info.default:
            config[name] = value
    config.update(overrides)
    return {"resources": {resource_key: {"config": config}}}


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # two letters at least: `C:` would be a drive


def lake_location(value: str, setting: str = "JIRA_LAKE") -> str:
    """Where the Parquet goes: a local folder or s3://bucket/prefix (unset or blank: the default folder).
    Anything that looks like a URL but is not one of those is refused, or a typo (`s3:/bucket`) would become
    a local folder of that name."""
    location = value.strip()
    if not location:
        return DEFAULT_LAKE
    if location.startswith("s3://"):
        if not location[5:].split("/")[0]:
            raise ConfigError(f"{setting}={value!r} names no bucket; use s3://bucket/prefix")
        return location
    if _SCHEME.match(location) and not location.startswith("file://"):
        raise ConfigError(f"{setting}={value!r} is neither a local folder nor s3://bucket/prefix")
    return location


def io_manager_from_env() -> ParquetIOManager:
    kwargs: dict = {"base_path": lake_location(os.environ.get("JIRA_LAKE", ""))}
    for field, var in {"s3_endpoint_url": "JIRA_S3_ENDPOINT_URL", "s3_region": "AWS_REGION",
                       "sse_kms_key_id": "JIRA_S3_KMS_KEY_ID", "compression": "JIRA_PARQUET_COMPRESSION",
                       # optional AWS Glue Data Catalog registration (off unless a database is named)
                       "glue_database": "JIRA_GLUE_DATABASE", "glue_endpoint_url": "JIRA_GLUE_ENDPOINT_URL",
                       "glue_table_prefix": "JIRA_GLUE_TABLE_PREFIX"}.items():
        if os.environ.get(var):
            kwargs[field] = os.environ[var]
    compression = kwargs.get("compression")
    if compression and compression.lower() != "none":
        import pyarrow as pa

        try:
            available = pa.Codec.is_available(compression)
        except ValueError:  # not a codec name at all
            available = False
        if not available:
            raise ConfigError(f"JIRA_PARQUET_COMPRESSION={compression!r} is not a Parquet codec here; use zstd, "
                              "snappy, gzip, brotli, lz4 or none")
    if kwargs.get("glue_database") and not kwargs["base_path"].startswith("s3://"):
        raise ConfigError(f"JIRA_GLUE_DATABASE is set but JIRA_LAKE ({kwargs['base_path']}) is not an s3:// "
                          "location; Glue tables need S3: set JIRA_LAKE=s3://bucket/prefix or unset "
                          "JIRA_GLUE_DATABASE")
    if os.environ.get("JIRA_GLUE_CREATE_DATABASE", "").lower() in ("0", "false", "no"):
        kwargs["glue_create_database"] = False
    return ParquetIOManager(**kwargs)


def resources_from_env() -> dict:
    return {"jira": jira_resource_from_env(), "parquet_io_manager": io_manager_from_env()}
