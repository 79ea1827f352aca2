"""The Jira Cloud client: auth (OAuth 2.0 3LO, API tokens, client credentials), token stores, retry policy,
paging strategies and typed errors. No Dagster import here."""
from .auth import ApiToken, ClientCredentials, JiraAuth, OAuth3LO, pick_cloud_id
from .budget import RequestBudget
from .client import JiraClient, validate_site_url
from .errors import (
    ConfigError,
    JiraAuthError,
    JiraBadRequest,
    JiraError,
    JiraGone,
    JiraNotFound,
    JiraPermissionError,
    JiraProtocolError,
    JiraRateLimited,
    JiraScopeError,
    JiraServerError,
)
from .paging import NextPageUrl, OffsetLimit, PageBean, SinglePage, StartAtArray, StartAtTotal, TokenPages
from .retry import ClientStats, RetryPolicy, RetryStats, ThrottleGate
from .token_store import (
    FileTokenStore,
    LockTimeout,
    S3TokenStore,
    TokenSet,
    TokenStoreConflict,
    token_store_from_url,
)

__all__ = [
    "ApiToken",
    "ClientCredentials",
    "ClientStats",
    "ConfigError",
    "FileTokenStore",
    "JiraAuth",
    "JiraAuthError",
    "JiraBadRequest",
    "JiraClient",
    "JiraError",
    "JiraGone",
    "JiraNotFound",
    "JiraPermissionError",
    "JiraProtocolError",
    "JiraRateLimited",
    "JiraScopeError",
    "JiraServerError",
    "LockTimeout",
    "NextPageUrl",
    "OAuth3LO",
    "OffsetLimit",
    "PageBean",
    "RequestBudget",
    "RetryPolicy",
    "RetryStats",
    "S3TokenStore",
    "SinglePage",
    "StartAtArray",
    "StartAtTotal",
    "ThrottleGate",
    "TokenPages",
    "TokenSet",
    "TokenStoreConflict",
    "token_store_from_url",
    "pick_cloud_id",
    "validate_site_url",
]
