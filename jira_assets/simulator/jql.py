"""A JQL subset good enough for extractors, evaluated as numpy masks over the issue columns.

Supported: `updated`/`created`/`resolved` compared (=, !=, <, <=, >, >=) with epoch milliseconds,
`"yyyy-MM-dd HH:mm"`/`"yyyy/MM/dd HH:mm"`/date-only literals (read in the **calling user's time zone**),
relative periods (`-5m`, `-1d`, `"-2w 3d"`) and `now()`; `project`, `id`/`key`/`issuekey`/`issue`, `issuetype`,
`status`, `statusCategory`, `priority`, `resolution`, `assignee`/`reporter` (incl. `currentUser()`),
`labels`, `parent` with `=`, `!=`, `in`, `not in`, `is [not] empty`; `AND`, `OR`, `NOT`, parentheses;
`ORDER BY` on updated, created, resolved, id, key, project, priority, status, issuetype.
Errors carry Jira's messages so the HTTP layer can answer 400 ErrorCollections.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import numpy as np

from .timeutil import BadDateValue, jql_date_to_ms
from .world import ISSUE_TYPES, PRIORITIES, RESOLUTIONS, STATUS_CATEGORIES, STATUSES

UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."


class JqlError(ValueError):
    """A JQL problem Jira reports as 400 `{"errorMessages":[message],"errors":{}}`."""


# --- tokens ----------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>>=|<=|!=|!~|=|>|<|~|\(|\)|,)
    | (?P<word>[^\s()=<>!~,"']+)
    )""", re.X)
_KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}


@dataclass
class Token:
    kind: str  # string | op | word | keyword | end
    text: str
    pos: int

    @property
    def value(self) -> str:
        if self.kind == "string":
            return re.sub(r"\\(.)", r"\1", self.text[1:-1])
        return self.text


def tokenize(jql: str) -> list[Token]:
    tokens, pos = [], 0
    jql = jql.rstrip()
    while pos < len(jql):
        match = _TOKEN.match(jql, pos)
        if not match or match.end() == pos:
            raise JqlError(f"Error in the JQL Query: The character '{jql[pos]}' is a reserved JQL character. "
                           f"You must enclose it in a string or use the escape '\\u{ord(jql[pos]):04x}' instead. "
                           f"(line 1, character {pos + 1})")
        kind = match.lastgroup
        text, start = match.group(kind), match.start(kind)
        if kind == "word" and text.lower() in _KEYWORDS:
            kind = "keyword"
        tokens.append(Token(kind, text, start))
        pos = match.end()
    tokens.append(Token("end", "", len(jql)))
    return tokens


# --- syntax tree -----------------------------------------------------------------------------------

@dataclass
class Value:
    text: str
    quoted: bool = False
    function: Optional[str] = None  # now, currentUser, ...


@dataclass
class Clause:
    field: str
    op: str  # =, !=, <, <=, >, >=, in, not in, is, is not, ~, !~
    values: list[Value]
    pos: int


@dataclass
class BoolOp:
    op: str  # and | or
    parts: list["Node"]


@dataclass
class Not:
    part: "Node"


Node = Union[Clause, BoolOp, Not]


@dataclass
class Query:
    where: Optional[Node]
    order: list[tuple[str, bool]]  # (field, ascending)

    @property
    def bounded(self) -> bool:
        return self.where is not None


class _Parser:
    def __init__(self, jql: str):
        self.tokens = tokenize(jql)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def is_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "keyword" and token.text.lower() in words

    def expect_keyword(self, word: str) -> None:
        if not self.is_keyword(word):
            self.fail(f"'{word.upper()}'")
        self.take()

    def fail(self, expected: str) -> None:
        token = self.peek()
        got = token.text or "<EOF>"
        raise JqlError(f"Error in the JQL Query: Expecting {expected} but got '{got}'. "
                       f"(line 1, character {token.pos + 1})")

    def parse(self) -> Query:
        where = None
        if not (self.peek().kind == "end" or self.is_keyword("order")):
            where = self.parse_or()
        order: list[tuple[str, bool]] = []
        if self.is_keyword("order"):
            self.take()
            self.expect_keyword("by")
            while True:
                token = self.take()
                if token.kind not in ("word", "string"):
                    self.i -= 1
                    self.fail("a field name")
                ascending = True
                if self.is_keyword("asc", "desc"):
                    ascending = self.take().text.lower() == "asc"
                order.append((token.value, ascending))
                if self.peek().text == ",":
                    self.take()
                    continue
                break
        if self.peek().kind != "end":
            self.fail("either 'OR' or 'AND'")
        return Query(where, order)

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.is_keyword("or"):
            self.take()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else BoolOp("or", parts)

    def parse_and(self) -> Node:
        parts = [self.parse_not()]
        while self.is_keyword("and"):
            self.take()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else BoolOp("and", parts)

    def parse_not(self) -> Node:
        if self.is_keyword("not"):
            self.take()
            return Not(self.parse_not())
        if self.peek().text == "(":
            self.take()
            node = self.parse_or()
            if self.peek().text != ")":
                self.fail("')'")
            self.take()
            return node
        return self.parse_clause()

    def parse_clause(self) -> Clause:
        field_token = self.take()
        if field_token.kind not in ("word", "string"):
            self.i -= 1
            self.fail("a field name")
        token = self.peek()
        if token.kind == "op" and token.text in ("=", "!=", "<", "<=", ">", ">=", "~", "!~"):
            self.take()
            return Clause(field_token.value, token.text, [self.parse_value()], field_token.pos)
        if self.is_keyword("in"):
            self.take()
            return Clause(field_token.value, "in", self.parse_list(), field_token.pos)
        if self.is_keyword("not"):
            self.take()
            self.expect_keyword("in")
            return Clause(field_token.value, "not in", self.parse_list(), field_token.pos)
        if self.is_keyword("is"):
            self.take()
            op = "is"
            if self.is_keyword("not"):
                self.take()
                op = "is not"
            if not self.is_keyword("empty", "null"):
                self.fail("'EMPTY'")
            self.take()
            return Clause(field_token.value, op, [], field_token.pos)
        self.fail("operator but got")
        raise AssertionError  # pragma: no cover

    def parse_list(self) -> list[Value]:
        if self.peek().text != "(":
            self.fail("'('")
        self.take()
        values = [self.parse_value()]
        while self.peek().text == ",":
            self.take()
            values.append(self.parse_value())
        if self.peek().text != ")":
            self.fail("')'")
        self.take()
        return values

    def parse_value(self) -> Value:
        token = self.take()
        if token.kind == "string":
            return Value(token.value, quoted=True)
        if token.kind == "keyword" and token.text.lower() in ("empty", "null"):
            return Value("", function="empty")
        if token.kind != "word":
            self.i -= 1
            self.fail("either a value, list or function")
        if self.peek().text == "(":  # function call such as now() or currentUser()
            self.take()
            args = []
            while self.peek().text != ")":
                if self.peek().kind == "end":
                    self.fail("')'")
                arg = self.take()
                if arg.text != ",":
                    args.append(arg.value)
            self.take()
            return Value(",".join(args), function=token.text.lower())
        return Value(token.text)


def parse(jql: str) -> Query:
    return _Parser(jql or "").parse()


# --- evaluation ------------------------------------------------------------------------------------

@dataclass
class EvalContext:
    now_ms: int
    zone: str  # the calling user's time zone
    viewer_account: Optional[str]


_DATE_FIELDS = {"updated": "updated", "updateddate": "updated", "created": "created", "createddate": "created",
                "resolved": "resolved", "resolutiondate": "resolved"}
_KEY_FIELDS = {"id", "key", "issuekey", "issue"}
_NAMED = {
    "issuetype": ("type", [(t[0], t[1]) for t in ISSUE_TYPES]),
    "type": ("type", [(t[0], t[1]) for t in ISSUE_TYPES]),
    "status": ("status", [(s[0], s[1]) for s in STATUSES]),
    "priority": ("priority", [(p[0], p[1]) for p in PRIORITIES]),
    "resolution": ("resolution", [(r[0], r[1]) for r in RESOLUTIONS]),
}


class Evaluator:
    """Evaluates a parsed query against an issue source (`col` arrays + `world` + lookups)."""

    def __init__(self, source: Any, ctx: EvalContext):
        self.source = source
        self.col = source.col
        self.world = source.world
        self.ctx = ctx

    def mask(self, node: Node) -> np.ndarray:
        if isinstance(node, BoolOp):
            masks = [self.mask(part) for part in node.parts]
            combine = np.logical_and if node.op == "and" else np.logical_or
            result = masks[0]
            for m in masks[1:]:
                result = combine(result, m)
            return result
        if isinstance(node, Not):
            return ~self.mask(node.part)
        return self.clause(node)

    def clause(self, clause: Clause) -> np.ndarray:
        name = clause.field.lower()
        if name in _DATE_FIELDS:
            return self._dates(clause, _DATE_FIELDS[name])
        if name == "project":
            return self._indexed(clause, "project", self._project_index)
        if name in _KEY_FIELDS:
            return self._keys(clause)
        if name in _NAMED:
            column, choices = _NAMED[name]
            return self._indexed(clause, column, lambda v: _lookup(choices, v, clause.field))
        if name == "statuscategory":
            categories = [(str(c[0]), c[3]) for c in STATUS_CATEGORIES] + [(c[1], c[1]) for c in STATUS_CATEGORIES]
            status_category = np.array([s[2] for s in STATUSES])[self.col["status"]]
            return self._compare_index(clause, status_category,
                                       lambda v: _lookup(categories, v, clause.field) % len(STATUS_CATEGORIES))
        if name in ("assignee", "reporter"):
            return self._indexed(clause, name, self._user_index)
        if name == "labels":
            return self._labels(clause)
        if name == "parent":
            return self._indexed(clause, "parent", lambda v: self._issue_index(v, clause.field))
        raise JqlError(f"Field '{clause.field}' does not exist or you do not have permission to view it.")

    # clause kinds -----------------------------------------------------------------------------
    def _dates(self, clause: Clause, column: str) -> np.ndarray:
        data = self.col[column]
        has_value = data > 0
        if clause.op in ("is", "is not"):
            return ~has_value if clause.op == "is" else has_value
        if clause.op in ("in", "not in"):
            points = np.array([self._date(v, clause) for v in clause.values])
            inside = np.isin(data, points)
            return (inside if clause.op == "in" else ~inside) & has_value
        if clause.op in ("~", "!~"):
            raise JqlError(f"The operator '{clause.op}' is not supported by the '{clause.field}' field.")
        point = self._date(clause.values[0], clause)
        return _COMPARE[clause.op](data, point) & has_value

    def _date(self, value: Value, clause: Clause) -> int:
        if value.function == "now":
            return self.ctx.now_ms
        if value.function:
            raise JqlError(f"Error in the JQL Query: the function '{value.function}' is not supported by this site.")
        try:
            return jql_date_to_ms(value.text, self.ctx.zone, self.ctx.now_ms)
        except BadDateValue:
            raise JqlError(
                f"Date value '{value.text}' for field '{clause.field}' is invalid. Valid formats include: "
                "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format "
                "e.g. '-5d', '4w 2d'.") from None

    def _indexed(self, clause: Clause, column: str, resolve: Callable[[Value], int]) -> np.ndarray:
        return self._compare_index(clause, self.col[column], resolve)

    def _compare_index(self, clause: Clause, data: np.ndarray, resolve: Callable[[Value], int]) -> np.ndarray:
        present = data >= 0
        if clause.op in ("is", "is not"):
            return ~present if clause.op == "is" else present
        if clause.op in ("=", "!="):
            if clause.values[0].function == "empty":
                return ~present if clause.op == "=" else present
            target = resolve(clause.values[0])
            return data == target if clause.op == "=" else (data != target) & present
        if clause.op in ("in", "not in"):
            targets = [resolve(v) for v in clause.values if v.function != "empty"]
            empty = any(v.function == "empty" for v in clause.values)
            inside = np.isin(data, targets) | (~present if empty else False)
            return inside if clause.op == "in" else ~inside & present
        raise JqlError(f"The operator '{clause.op}' is not supported by the '{clause.field}' field.")

    def _keys(self, clause: Clause) -> np.ndarray:
        ids = self.col["id"]
        if clause.op in ("in", "not in"):
            targets = [self._issue_id(v, clause.field) for v in clause.values]
            inside = np.isin(ids, targets)
            return inside if clause.op == "in" else ~inside
        if clause.op in ("is", "is not", "~", "!~"):
            raise JqlError(f"The operator '{clause.op}' is not supported by the '{clause.field}' field.")
        value = clause.values[0]
        if clause.op in ("=", "!="):
            target = self._issue_id(value, clause.field)
            return ids == target if clause.op == "=" else ids != target
        if value.text.isdigit():  # id range
            return _COMPARE[clause.op](ids, int(value.text))
        # key range: only within the key's project, by key number
        project_key, _, number = value.text.upper().rpartition("-")
        project = self.world.projects_by_key.get(project_key)
        if project is None or not number.isdigit():
            raise JqlError(f"The issue key '{value.text}' for field '{clause.field}' is invalid.")
        return (self.col["project"] == project.index) & _COMPARE[clause.op](self.col["key_num"], int(number))

    def _labels(self, clause: Clause) -> np.ndarray:
        data = self.col["labels"]
        if clause.op in ("is", "is not"):
            return (data == 0) if clause.op == "is" else (data != 0)
        vocab = self.source.labels_vocab

        def bit(value: Value) -> int:
            return (1 << vocab.index(value.text)) if value.text in vocab else 0

        if clause.op in ("=", "!=", "in", "not in"):
            mask_bits = 0
            for value in clause.values:
                mask_bits |= bit(value)
            hit = (data & mask_bits) != 0
            return hit if clause.op in ("=", "in") else ~hit
        raise JqlError(f"The operator '{clause.op}' is not supported by the 'labels' field.")

    # value resolution ---------------------------------------------------------------------------
    def _project_index(self, value: Value) -> int:
        world = self.world
        text = value.text
        project = (world.projects_by_key.get(text.upper()) or world.projects_by_id.get(text)
                   or next((p for p in world.projects if p.name.lower() == text.lower()), None))
        if project is None:
            raise JqlError(f"The value '{text}' does not exist for the field 'project'.")
        return project.index

    def _user_index(self, value: Value) -> int:
        account = self.ctx.viewer_account if value.function == "currentuser" else value.text
        user = self.world.users_by_account.get(account or "")
        if user is None:
            raise JqlError(f"The value '{value.text}' does not exist for the field 'assignee'.")
        return user.index

    def _issue_index(self, value: Value, field: str) -> int:
        return self._issue_id(value, field) - int(self.col["id"][0]) if len(self.col["id"]) else -1

    def _issue_id(self, value: Value, field: str) -> int:
        idx = self.source.find(value.text)
        if idx is None:
            if value.text.isdigit():
                return int(value.text)  # unknown numeric ids simply match nothing
            raise JqlError(f"An issue with key '{value.text}' does not exist for field '{field}'.")
        return int(self.col["id"][idx])


_COMPARE = {
    "=": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
}


def _lookup(choices: list[tuple[str, str]], value: Value, field: str) -> int:
    text = value.text.lower()
    for index, (choice_id, name) in enumerate(choices):
        if text == choice_id.lower() or text == name.lower():
            return index
    raise JqlError(f"The value '{value.text}' does not exist for the field '{field}'.")


_SORT_COLUMNS = {"updated": "updated", "updateddate": "updated", "created": "created", "createddate": "created",
                 "resolved": "resolved", "resolutiondate": "resolved", "id": "id", "priority": "priority",
                 "status": "status", "issuetype": "type", "type": "type"}
#: what Jira uses when the query has no ORDER BY
DEFAULT_ORDER = [("created", False)]


def run(query: Query, source: Any, ctx: EvalContext, visible: np.ndarray) -> np.ndarray:
    """Indices of matching, visible, live issues in the query's order (id ascending breaks ties)."""
    mask = visible & ~source.col["deleted"]
    if query.where is not None:
        mask &= Evaluator(source, ctx).mask(query.where)
    matches = np.flatnonzero(mask)
    keys = [source.col["id"][matches]]  # lexsort: the last key is the primary one
    for field, ascending in reversed(query.order or DEFAULT_ORDER):
        name = field.lower()
        if name in ("key", "issuekey"):
            rank = np.array([p.key for p in source.world.projects]).argsort().argsort()
            columns = [source.col["key_num"][matches], rank[source.col["project"][matches]]]
        elif name == "project":
            rank = np.array([p.key for p in source.world.projects]).argsort().argsort()
            columns = [rank[source.col["project"][matches]]]
        elif name in _SORT_COLUMNS:
            columns = [source.col[_SORT_COLUMNS[name]][matches]]
        else:
            raise JqlError(f"Not able to sort using field '{field}'.")
        for column in columns:
            keys.append(column if ascending else -column)
    return matches[np.lexsort(keys)] if len(matches) else matches
