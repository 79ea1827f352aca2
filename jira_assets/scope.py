"""What a user extracts: projects, an extra JQL filter, the first partition, and which issue fields land how.

One typed, validated place (no Dagster import). An `ExtractionScope` comes from environment variables and/or a
small YAML file (`JIRA_SCOPE_FILE`), is shown and overridable as `JiraCloudResource` config, and is checked in
three steps, each failing with a message that names the setting and the fix:

1. `ExtractionScope.validate()` - offline, at load: formats, contradictions, a missing salt.
2. `ExtractionScope.check(client)` - at run start, before anything is written: every project and the JQL filter
   are asked of Jira (`POST /search/approximate-count`; a 400 is an error carrying Jira's message, never zero
   rows - C11), and field references are resolved against `/field` (ids or readable names; an unknown name
   lists close matches). It returns a `FieldPolicy`.
3. `FieldPolicy` applies include/exclude/mask to every record of issues and their children *before* conversion,
   so a dropped or masked value never reaches a typed column, `fields_json`, `changelog_json`, the changelog,
   comment or worklog rows, `_raw`, or metadata.

Masking is HMAC-SHA-256 keyed with `JIRA_MASK_SALT`, hex encoded (64 characters), applied to every scalar inside
the value (a user object keeps its shape, with `accountId`, `displayName`, `emailAddress`... each hashed), so
the same value hashes the same everywhere and masked columns still join: `hmac.new(salt.encode(),
value.encode(), hashlib.sha256).hexdigest()` where `value` is the string, or the JSON text of a number/boolean.
"""
from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Iterable, Mapping, Optional, Sequence

import orjson

from jira_assets.catalog import ARRAY
from jira_assets.jira.errors import ConfigError, JiraBadRequest

API = "/rest/api/2"

#: the assets the scope applies to (issues and their children)
SCOPED_OBJECTS = frozenset({"issues", "issue_comments", "issue_changelogs", "issue_worklogs"})
#: fields extraction itself needs (window filter, partitioning, downstream joins): never dropped or masked
REQUIRED_FIELDS = ("project", "issuetype", "status", "created", "updated")
#: embedded child pages: they feed issue_comments / issue_worklogs; they can be masked (text only), not dropped
CHILD_PAGE_FIELDS = ("comment", "worklog")
#: column names the tables reserve (Parquet bookkeeping, the hive partition column, the JSON columns)
RESERVED_COLUMNS = frozenset({"_raw", "_extracted_at", "date", "fields_json", "comments_json", "worklogs_json",
                              "changelog_json", "id", "key"})
MIN_SALT_LENGTH = 16
_COLUMN_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")
_PROJECT = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_]{0,254}|[0-9]+)$")
_ORDER_BY = re.compile(r"\border\s+by\b", re.I)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')

# environment variables (the YAML file's keys are in `_FILE_KEYS`)
ENV_SCOPE_FILE = "JIRA_SCOPE_FILE"
ENV = {
    "projects": "JIRA_PROJECTS",
    "jql_filter": "JIRA_JQL_FILTER",
    "include_fields": "JIRA_INCLUDE_FIELDS",
    "exclude_fields": "JIRA_EXCLUDE_FIELDS",
    "rename_fields": "JIRA_RENAME_FIELDS",
    "mask_fields": "JIRA_MASK_FIELDS",
    "mask_users": "JIRA_MASK_USERS",
    "mask_salt": "JIRA_MASK_SALT",
    "history_start": "JIRA_HISTORY_START",
}


class ScopeError(ConfigError):
    """The extraction scope is wrong. `problems` holds (setting, message) pairs; the text lists them all."""

    def __init__(self, problems: Sequence[tuple[str, str]]):
        self.problems = list(problems)
        lines = [f"{name}{_WHERE.get(name, '')}: {message}" for name, message in self.problems]
        text = lines[0] if len(lines) == 1 else f"{len(lines)} problems in the extraction scope:\n- " + "\n- ".join(lines)
        super().__init__(text)

    def __reduce__(self):  # picklable across Dagster's processes
        return (ScopeError, (self.problems,))


def _closes_early(text: str) -> bool:
    depth = 0
    for char in text:
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return True
    return False


@dataclass(frozen=True)
class ExtractionScope:
    """Which issues (and children) are extracted, and how their fields land."""

    projects: tuple[str, ...] = ()  # keys or ids; empty = every project the account can browse
    jql_filter: Optional[str] = None  # extra JQL AND-ed to every issue search
    include_fields: tuple[str, ...] = ()  # ids or names; empty = every field
    exclude_fields: tuple[str, ...] = ()
    rename_fields: Mapping[str, str] = field(default_factory=dict)  # field (id/name) or column -> column name
    mask_fields: tuple[str, ...] = ()  # hashed wherever the value would land
    mask_users: bool = False  # hash every user reference (accountId, name, email) in issues and children
    mask_salt: Optional[str] = field(default=None, repr=False)
    history_start: Optional[str] = None  # YYYY-MM-DD: the first partition

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "scope") -> "ExtractionScope":
        """From the YAML file's shape (see `README`): unknown keys are errors, not silently ignored."""
        problems: list[tuple[str, str]] = []
        if not isinstance(data, Mapping):
            raise ScopeError([(source, f"must be a mapping of settings, not {type(data).__name__}")])
        unknown = sorted(set(data) - set(_FILE_KEYS))
        for key in unknown:
            hint = difflib.get_close_matches(str(key), _FILE_KEYS, n=1)
            problems.append((f"{source}: {key}", "unknown setting" + (f"; did you mean '{hint[0]}'?" if hint else
                             f"; known: {', '.join(_FILE_KEYS)}")))
        fields_section = data.get("fields") or {}
        if not isinstance(fields_section, Mapping):
            problems.append((f"{source}: fields", "must be a mapping with include / exclude / rename / mask"))
            fields_section = {}
        for key in sorted(set(fields_section) - {"include", "exclude", "rename", "mask", "mask_users"}):
            problems.append((f"{source}: fields.{key}", "unknown setting; known: include, exclude, rename, mask, "
                                                         "mask_users"))
        kwargs: dict[str, Any] = {}
        for key, target in (("projects", "projects"),):
            if data.get(key) is not None:
                kwargs[target] = _string_list(data[key], f"{source}: {key}", problems)
        if data.get("jql") is not None:
            if not isinstance(data["jql"], str):
                problems.append((f"{source}: jql", "must be a JQL string"))
            else:
                kwargs["jql_filter"] = data["jql"]
        if data.get("history_start") is not None:
            kwargs["history_start"] = str(data["history_start"])  # YAML reads 2026-01-01 as a date
        for key, target in (("include", "include_fields"), ("exclude", "exclude_fields"), ("mask", "mask_fields")):
            if fields_section.get(key) is not None:
                kwargs[target] = _string_list(fields_section[key], f"{source}: fields.{key}", problems)
        if fields_section.get("rename") is not None:
            rename = fields_section["rename"]
            if not isinstance(rename, Mapping):
                problems.append((f"{source}: fields.rename", "must map a field (id or name) to a column name"))
            else:
                kwargs["rename_fields"] = {str(k): str(v) for k, v in rename.items()}
        if fields_section.get("mask_users") is not None:
            kwargs["mask_users"] = bool(fields_section["mask_users"])
        if problems:
            raise ScopeError(problems)
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str) -> "ExtractionScope":
        import yaml

        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle) or {}
        except FileNotFoundError:
            raise ScopeError([(ENV_SCOPE_FILE, f"no file at {path!r}; fix the path or unset {ENV_SCOPE_FILE}")]) \
                from None
        except yaml.YAMLError as exc:
            raise ScopeError([(path, f"is not valid YAML: {str(exc).splitlines()[0]}")]) from None
        return cls.from_mapping(data, source=os.path.basename(path))

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "ExtractionScope":
        """The YAML file named by JIRA_SCOPE_FILE (if any), then each JIRA_* variable that is set overrides it."""
        env = os.environ if environ is None else environ
        scope = cls.from_file(env[ENV_SCOPE_FILE]) if env.get(ENV_SCOPE_FILE) else cls()
        changes: dict[str, Any] = {}
        for name in ("projects", "include_fields", "exclude_fields", "mask_fields"):
            if env.get(ENV[name]):
                changes[name] = tuple(split_list(env[ENV[name]]))
        if env.get(ENV["jql_filter"]):
            changes["jql_filter"] = env[ENV["jql_filter"]]
        if env.get(ENV["rename_fields"]):
            changes["rename_fields"] = parse_renames(env[ENV["rename_fields"]], ENV["rename_fields"])
        if env.get(ENV["mask_users"]):
            changes["mask_users"] = env[ENV["mask_users"]].strip().lower() in ("1", "true", "yes", "on")
        if env.get(ENV["mask_salt"]):
            changes["mask_salt"] = env[ENV["mask_salt"]]
        if env.get(ENV["history_start"]):
            changes["history_start"] = env[ENV["history_start"]]
        return replace(scope, **changes)

    # ------------------------------------------------------------------ offline validation

    def problems(self) -> list[tuple[str, str]]:
        """Every problem found without asking Jira, as (setting, message naming the fix)."""
        found: list[tuple[str, str]] = []
        for project in self.projects:
            if not _PROJECT.match(project.strip()):
                found.append(("projects", f"{project!r} is not a project key or id; use the key (e.g. ENG) or the "
                                          "numeric id shown in the project's settings"))
        if self.jql_filter is not None:
            text = self.jql_filter.strip()
            outside_quotes = _QUOTED.sub('""', text)
            if not text:
                found.append(("jql_filter", "is blank; remove it or write a JQL condition such as "
                                            "'statusCategory != Done'"))
            elif _ORDER_BY.search(outside_quotes):
                found.append(("jql_filter", "must not contain ORDER BY: extraction orders issues by updated "
                                            "itself; remove the ORDER BY clause"))
            elif outside_quotes.count("(") != outside_quotes.count(")"):
                found.append(("jql_filter", "has unbalanced parentheses; close every '('"))
            elif _closes_early(outside_quotes):
                # `a) OR (b` balances, yet once wrapped in the window's `AND (...)` it escapes it: every issue
                # matching b would be fetched for every partition
                found.append(("jql_filter", "closes a parenthesis it did not open; the filter must be one "
                                            "condition, e.g. '(status = Done OR project = DEMO)'"))
            elif text.count('"') % 2 and outside_quotes.count('"') % 2:
                found.append(("jql_filter", "has an unterminated quoted string; close every '\"'"))
        if self.include_fields and self.exclude_fields:
            found.append(("include_fields", "set either include_fields (keep only these) or exclude_fields (drop "
                                            "these), not both"))
        for name in ("include_fields", "exclude_fields", "mask_fields"):
            for ref in getattr(self, name):
                if not str(ref).strip():
                    found.append((name, "has an empty entry; remove it"))
        excluded = {r.strip().casefold() for r in self.exclude_fields}
        for ref in self.mask_fields:
            if ref.strip().casefold() in excluded:
                found.append(("mask_fields", f"{ref!r} is also in exclude_fields; an excluded field is dropped "
                                             "entirely, so remove it from one of the two"))
        targets: dict[str, str] = {}
        for source, target in self.rename_fields.items():
            if not _COLUMN_NAME.match(target):
                found.append(("rename_fields", f"{source!r} -> {target!r}: a column name must be lower case "
                                               "letters, digits and _, starting with a letter or _ (e.g. "
                                               f"{_suggest_column(target)!r})"))
            elif target in RESERVED_COLUMNS:
                found.append(("rename_fields", f"{source!r} -> {target!r}: {target!r} is reserved; pick another "
                                               "name"))
            elif target in targets:
                found.append(("rename_fields", f"{targets[target]!r} and {source!r} are both renamed to "
                                               f"{target!r}; give each its own name"))
            targets.setdefault(target, source)
        if (self.mask_fields or self.mask_users) and len(self.mask_salt or "") < MIN_SALT_LENGTH:
            what = "is not set" if not self.mask_salt else f"is shorter than {MIN_SALT_LENGTH} characters"
            found.append(("mask_salt", f"{what}, but fields are masked; set {ENV['mask_salt']} to a secret random "
                                       "string (e.g. `openssl rand -hex 32`) and keep it: changing it changes "
                                       "every hash"))
        if self.history_start is not None:
            try:
                start = dt.date.fromisoformat(self.history_start)
            except ValueError:
                found.append(("history_start", f"{self.history_start!r} is not a date; write it as YYYY-MM-DD, "
                                               "e.g. 2026-01-01"))
            else:
                if start > dt.datetime.now(dt.timezone.utc).date():
                    found.append(("history_start", f"{self.history_start} is in the future; use today or an "
                                                   "earlier day"))
        return found

    def validate(self) -> "ExtractionScope":
        problems = self.problems()
        if problems:
            raise ScopeError(problems)
        return self

    # ------------------------------------------------------------------ JQL

    def project_clause(self) -> Optional[str]:
        if not self.projects:
            return None
        return "project in (" + ", ".join(jql_value(p.strip()) for p in self.projects) + ")"

    def jql(self) -> Optional[str]:
        """The scope as one JQL condition (projects AND filter), or None for everything."""
        clauses = [c for c in (self.project_clause(), self.jql_filter and f"({self.jql_filter.strip()})") if c]
        return " AND ".join(clauses) or None

    # ------------------------------------------------------------------ checks against Jira

    def check(self, client: Any, fields: Optional[list[dict]] = None) -> "FieldPolicy":
        """Ask Jira whether the projects and the filter are valid, resolve field references; nothing is written.

        Raises `ScopeError` naming the setting. Other Jira errors (auth, network) pass through unchanged.
        """
        self.validate()
        problems: list[tuple[str, str]] = []
        for project in self.projects:
            message = _jql_error(client, f"project = {jql_value(project.strip())}")
            if message:
                problems.append(("projects", f"Jira does not know project {project!r} ({message}); "
                                             f"{_project_hint(client, project)}"))
        if self.jql_filter:
            message = _jql_error(client, f"({self.jql_filter.strip()})")
            if message:
                problems.append(("jql_filter", f"Jira rejected {self.jql_filter.strip()!r}: {message} - fix the JQL "
                                               "(try it in Jira's issue search first)"))
        if fields is None:
            fields = client.records(f"{API}/field", ARRAY)
        try:
            policy = FieldPolicy.resolve(self, fields)
        except ScopeError as exc:
            problems.extend(exc.problems)
            policy = None
        if problems:
            raise ScopeError(problems)
        return policy

    def describe(self) -> dict[str, Any]:
        """Materialization metadata: what was in scope (never the salt)."""
        meta: dict[str, Any] = {"jira/scope_projects": ", ".join(self.projects) or "all"}
        if self.jql_filter:
            meta["jira/scope_jql_filter"] = self.jql_filter
        return meta


_FILE_KEYS = ("projects", "jql", "history_start", "fields")
# where each setting comes from, shown next to its name in errors
_WHERE = {
    "projects": " (env JIRA_PROJECTS; scope file: projects)",
    "jql_filter": " (env JIRA_JQL_FILTER; scope file: jql)",
    "include_fields": " (env JIRA_INCLUDE_FIELDS; scope file: fields.include)",
    "exclude_fields": " (env JIRA_EXCLUDE_FIELDS; scope file: fields.exclude)",
    "rename_fields": " (env JIRA_RENAME_FIELDS; scope file: fields.rename)",
    "mask_fields": " (env JIRA_MASK_FIELDS; scope file: fields.mask)",
    "mask_salt": " (env JIRA_MASK_SALT)",
    "history_start": " (env JIRA_HISTORY_START; scope file: history_start)",
}


def split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_renames(text: str, setting: str) -> dict[str, str]:
    """`Story Points=points, customfield_10039=customer` -> {source: target}."""
    renames: dict[str, str] = {}
    for part in split_list(text):
        source, sep, target = part.rpartition("=")
        if not sep or not source.strip() or not target.strip():
            raise ScopeError([(setting, f"{part!r} must look like 'field=column' (e.g. 'Story Points=points')")])
        renames[source.strip()] = target.strip()
    return renames


def jql_value(value: str) -> str:
    return value if value.isdigit() else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _string_list(value: Any, setting: str, problems: list) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(split_list(value))
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int)) for v in value):
        return tuple(str(v) for v in value)
    problems.append((setting, "must be a list of strings"))
    return ()


def _suggest_column(text: str) -> str:
    name = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    return name if name and not name[0].isdigit() else f"f_{name}"


def _jql_error(client: Any, jql: str) -> Optional[str]:
    """Jira's message when it refuses the JQL with a 400, else None (other errors propagate)."""
    try:
        client.post_json(f"{API}/search/approximate-count", {"jql": jql})
    except JiraBadRequest as exc:
        return "; ".join(exc.messages) or exc.message
    return None


def _project_hint(client: Any, project: str) -> str:
    fix = "use the key or id of a project this account can browse"
    try:
        page = client.get_json(f"{API}/project/search", params={"maxResults": 100}) or {}
    except Exception:  # noqa: BLE001 - only a hint
        return fix
    keys = [str(p.get("key")) for p in page.get("values") or [] if p.get("key")]
    close = difflib.get_close_matches(project.upper(), keys, n=3, cutoff=0.4)
    if close:
        return f"did you mean {', '.join(close)}? ({fix})"
    return f"{fix} (e.g. {', '.join(keys[:5])})" if keys else fix


# --------------------------------------------------------------------------------------------------
# field policy: references resolved against /field, applied to records before conversion
# --------------------------------------------------------------------------------------------------


def _field_index(fields: Sequence[dict]) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    by_id = {str(f["id"]): f for f in fields if f.get("id") is not None}
    by_name: dict[str, list[dict]] = {}
    for f in by_id.values():
        for name in {str(f.get("name") or ""), str(f.get("untranslatedName") or "")} - {""}:
            by_name.setdefault(name.casefold(), []).append(f)
    return by_id, by_name


def resolve_field(ref: str, fields: Sequence[dict], setting: str) -> str:
    """A field id from an id, `cf[10016]`, a readable name (any case) or its column form (`story_points`)."""
    by_id, by_name = _field_index(fields)
    ref = ref.strip()
    if ref in by_id:
        return ref
    match = re.fullmatch(r"cf\[(\d+)\]", ref, re.I)
    if match and f"customfield_{match.group(1)}" in by_id:
        return f"customfield_{match.group(1)}"
    lowered = {k.casefold(): k for k in by_id}
    if ref.casefold() in lowered:
        return lowered[ref.casefold()]
    candidates = by_name.get(ref.casefold()) or [
        f for f in by_id.values() if f.get("name") and _suggest_column(str(f["name"])) == ref.lower()]
    unique = {str(f["id"]): f for f in candidates}
    if len(unique) == 1:
        return next(iter(unique))
    if len(unique) > 1:
        listed = ", ".join(sorted(unique))
        raise ScopeError([(setting, f"{ref!r} names {len(unique)} fields ({listed}); use the id instead")])
    names = sorted({str(f.get("name")) for f in by_id.values() if f.get("name")})
    close = difflib.get_close_matches(ref, names + sorted(by_id), n=3, cutoff=0.6)
    if not close:
        close = [n for n in names if ref.casefold() in n.casefold()][:3]
    described = [f"'{c}' ({next((i for i, f in by_id.items() if f.get('name') == c), c)})" if c in names else f"'{c}'"
                 for c in close]
    hint = f"did you mean {' or '.join(described)}?" if described else "see GET /rest/api/2/field for ids and names"
    raise ScopeError([(setting, f"no Jira field {ref!r}; {hint}")])


@dataclass(frozen=True)
class FieldPolicy:
    """The field scope resolved to ids against one site's /field list; applies to records, never writes."""

    site_fields: tuple[dict, ...]
    dropped: frozenset[str] = frozenset()  # field ids removed everywhere
    masked: frozenset[str] = frozenset()  # field ids hashed everywhere
    renames: Mapping[str, str] = field(default_factory=dict)  # (field id or column) -> column name
    mask_users: bool = False
    salt: Optional[str] = field(default=None, repr=False)
    scope: ExtractionScope = field(default_factory=ExtractionScope)

    @classmethod
    def resolve(cls, scope: ExtractionScope, fields: Sequence[dict]) -> "FieldPolicy":
        problems: list[tuple[str, str]] = []

        def ids(setting: str, refs: Iterable[str]) -> list[str]:
            out = []
            for ref in refs:
                try:
                    out.append(resolve_field(ref, fields, setting))
                except ScopeError as exc:
                    problems.extend(exc.problems)
            return out

        by_id, _ = _field_index(fields)
        names = {i: str(f.get("name") or i) for i, f in by_id.items()}
        included, excluded, masked = (ids("include_fields", scope.include_fields),
                                      ids("exclude_fields", scope.exclude_fields), ids("mask_fields", scope.mask_fields))
        for field_id in excluded:
            if field_id in REQUIRED_FIELDS:
                problems.append(("exclude_fields", f"'{names[field_id]}' ({field_id}) is needed to partition and "
                                                   "join issues; remove it from exclude_fields"))
            if field_id in CHILD_PAGE_FIELDS:
                problems.append(("exclude_fields", f"'{names[field_id]}' ({field_id}) feeds the issue_"
                                                   f"{field_id}s asset; mask it instead (mask_fields) or do not "
                                                   f"materialize issue_{field_id}s"))
        for field_id in masked:
            if field_id in REQUIRED_FIELDS:
                problems.append(("mask_fields", f"'{names[field_id]}' ({field_id}) is needed to partition and join "
                                                "issues and cannot be masked; remove it from mask_fields"))
        dropped: set[str] = set(excluded)
        if included:
            keep = set(included) | set(REQUIRED_FIELDS) | set(CHILD_PAGE_FIELDS) | {"parent"}
            dropped |= {i for i in by_id if i not in keep}
        for field_id in masked:
            if field_id in dropped and field_id in set(included) | set(excluded):
                problems.append(("mask_fields", f"'{names[field_id]}' ({field_id}) is excluded; an excluded "
                                                "field is dropped entirely, so remove it from one of the two"))
        renames: dict[str, str] = {}
        from jira_assets.issue_schema import STANDARD_COLUMNS, columns_of_field, issue_column_names

        standard = {c.name for c in STANDARD_COLUMNS} | {"fields_json", "comments_json", "worklogs_json",
                                                         "changelog_json"}
        columns = issue_column_names(fields)
        for source, target in scope.rename_fields.items():
            column = source if source in columns else source.lower() if source.lower() in columns else None
            if column is None:
                try:
                    field_id = resolve_field(source, fields, "rename_fields")
                except ScopeError as exc:
                    problems.append(("rename_fields", exc.problems[0][1] + " (or name a custom field's column)"))
                    continue
                if field_id in dropped:
                    problems.append(("rename_fields", f"'{names[field_id]}' ({field_id}) is excluded, so it has no "
                                                      "column to rename; remove the rename"))
                    continue
                own = columns_of_field(field_id, fields)
                if len(own) != 1:
                    problems.append(("rename_fields", f"'{names[field_id]}' ({field_id}) is a standard field; its "
                                                      f"columns ({', '.join(own) or 'none: it is in fields_json'}) "
                                                      "keep their names so downstream tables keep working; rename "
                                                      "custom fields only"))
                    continue
                column = own[0]
            if column in standard:
                problems.append(("rename_fields", f"{column!r} is a standard column that downstream tables read; "
                                                  "rename custom fields only"))
                continue
            renames[column] = target
        final = [renames.get(c, c) for c in issue_column_names(fields, frozenset(dropped))]
        clashes = sorted({c for c in final if final.count(c) > 1})
        for clash in clashes:
            problems.append(("rename_fields", f"two columns would be called {clash!r}; pick another name"))
        if problems:
            raise ScopeError(problems)
        return cls(site_fields=tuple(fields), dropped=frozenset(dropped), masked=frozenset(masked),
                   renames=dict(renames), mask_users=scope.mask_users, salt=scope.mask_salt, scope=scope)

    # ------------------------------------------------------------------ what to ask Jira for

    def request_fields(self) -> list[str]:
        """`fields` for /search/jql: everything except what is dropped (Jira then never sends it)."""
        return ["*all", *sorted(f"-{i}" for i in self.dropped)]

    @property
    def masked_columns(self) -> frozenset[str]:
        """Masked fields whose typed columns hold digests (comment/worklog masking hashes only their text)."""
        return self.masked - set(CHILD_PAGE_FIELDS)

    @property
    def active(self) -> bool:
        return bool(self.dropped or self.masked or self.renames or self.mask_users)

    # ------------------------------------------------------------------ hashing

    def hash(self, value: Any) -> Any:
        """Every scalar inside `value` replaced by its salted SHA-256 (HMAC) hex digest; shape and nulls kept."""
        if value is None:
            return None
        if isinstance(value, dict):
            return {k: self.hash(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.hash(v) for v in value]
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        return hmac.new((self.salt or "").encode(), text.encode(), hashlib.sha256).hexdigest()

    def _users(self, value: Any) -> Any:
        """User references (dicts with an accountId) hashed wherever they sit in `value`."""
        if isinstance(value, dict):
            if "accountId" in value:
                return self.hash(value)
            return {k: self._users(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._users(v) for v in value]
        return value

    # ------------------------------------------------------------------ records

    @cached_property
    def _index(self) -> tuple[dict[str, dict], dict[str, list[dict]]]:
        return _field_index(self.site_fields)

    @cached_property
    def _user_fields(self) -> frozenset[str]:
        def is_user(schema: dict) -> bool:
            return schema.get("type") == "user" or (schema.get("type") == "array" and schema.get("items") == "user")

        return frozenset(i for i, f in self._index[0].items() if is_user(f.get("schema") or {}))

    def _field_id_of_item(self, item: dict) -> Optional[str]:
        field_id = item.get("fieldId")
        if field_id:
            return str(field_id)
        name = str(item.get("field") or "")
        by_id, by_name = self._index
        if name in by_id:
            return name
        matches = by_name.get(name.casefold()) or []
        return str(matches[0]["id"]) if len(matches) == 1 else name

    def _user_field(self, field_id: Optional[str]) -> bool:
        return field_id in self._user_fields

    def histories(self, histories: list) -> list:
        """Changelog histories with items of dropped fields removed and of masked fields hashed."""
        if not self.active:
            return histories
        out = []
        for history in histories:
            items = []
            for item in history.get("items") or []:
                field_id = self._field_id_of_item(item)
                if field_id in self.dropped:
                    continue
                if field_id in self.masked or (self.mask_users and self._user_field(field_id)):
                    item = {**item, **{k: self.hash(item.get(k)) for k in ("from", "to", "fromString", "toString")
                                       if k in item}}
                items.append(item)
            history = {**history, "items": items}
            if self.mask_users:
                history = self._users(history)
            out.append(history)
        return out

    def comment(self, comment: dict) -> dict:
        if "comment" in self.masked:
            comment = {**comment, **{k: self.hash(comment[k]) for k in ("body", "renderedBody") if k in comment}}
        return self._users(comment) if self.mask_users else comment

    def worklog(self, worklog: dict) -> dict:
        if "worklog" in self.masked:
            worklog = {**worklog, **{k: self.hash(worklog[k]) for k in ("comment", "renderedComment")
                                     if k in worklog}}
        return self._users(worklog) if self.mask_users else worklog

    def issue(self, issue: dict) -> dict:
        """One /search/jql issue with dropped fields removed and masked ones hashed (fields and changelog)."""
        if not self.active:
            return issue
        out = dict(issue)
        fields = issue.get("fields")
        if isinstance(fields, dict):
            kept = {}
            for key, value in fields.items():
                if key in self.dropped:
                    continue
                if key in self.masked and key not in CHILD_PAGE_FIELDS:
                    value = self.hash(value)
                elif key == "comment" and isinstance(value, dict):
                    value = {**value, "comments": [self.comment(c) for c in value.get("comments") or []]}
                elif key == "worklog" and isinstance(value, dict):
                    value = {**value, "worklogs": [self.worklog(w) for w in value.get("worklogs") or []]}
                elif self.mask_users:
                    value = self._users(value)
                kept[key] = value
            out["fields"] = kept
        changelog = issue.get("changelog")
        if isinstance(changelog, dict) and "histories" in changelog:
            out["changelog"] = {**changelog, "histories": self.histories(changelog.get("histories") or [])}
        for key in ("renderedFields", "names", "schema", "versionedRepresentations"):
            if key in out and isinstance(out[key], dict):  # other views of the same values
                out[key] = {k: v for k, v in out[key].items() if k not in self.dropped and k not in self.masked}
        return out

    # ------------------------------------------------------------------ metadata

    def _label(self, field_id: str) -> str:
        name = self._index[0].get(field_id, {}).get("name")
        return f"{field_id} ({name})" if name and name != field_id else field_id

    def metadata(self) -> dict[str, Any]:
        meta = self.scope.describe()
        if self.dropped:
            meta["jira/fields_dropped"] = sorted(self._label(i) for i in self.dropped)
        if self.masked:
            meta["jira/fields_masked"] = sorted(self._label(i) for i in self.masked)
        if self.mask_users:
            meta["jira/users_masked"] = True
        if self.masked or self.mask_users:
            meta["jira/masking"] = "HMAC-SHA-256 hex keyed with JIRA_MASK_SALT"
        if self.renames:
            meta["jira/columns_renamed"] = dict(sorted(self.renames.items()))
        return meta


__all__ = ["ExtractionScope", "FieldPolicy", "ScopeError", "SCOPED_OBJECTS", "resolve_field", "split_list"]
