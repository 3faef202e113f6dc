"""ListDevices' ``filter``: a small subset of AIP-160, compiled to one SQL condition.

An operator with ten thousand devices asks questions of a few of them: which devices
still run the old model, which have not been seen for an hour, which measure their model
over budget. Listing every device and filtering on the client pages through all of them;
the condition runs in the database instead, beside the keyset paging.

The grammar is the AIP-160 subset those questions need, nothing more: terms joined by
``AND`` (upper case, as AIP-160 spells it), each ``FIELD OP VALUE``:

    hardware_id                  =  !=                "text"
    status.model_sha256          =  !=                "64 hex digits", or "" for none
    status.measured_latency_ms   =  !=  <  <=  >  >=  a number
    last_seen_time               <  <=  >  >=         "an RFC 3339 time, e.g. 2026-12-06T17:00:00Z"

A device that never reported has no ``status.measured_latency_ms`` and one never seen has
no ``last_seen_time``: no comparison on them matches it. Its ``status.model_sha256`` is
"" (no model). Anything else is INVALID_ARGUMENT naming the character at fault.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, true

from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.registry.tables import DeviceRow

MAX_FILTER_LENGTH = 512
MAX_TERMS = 8
FIELD = "filter"
EXAMPLE = 'status.model_sha256 != "" AND last_seen_time < "2026-12-06T17:00:00Z"'

_TERM = re.compile(
    r"\s*(?P<field>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op><=|>=|!=|=|<|>)\s*"
    r'(?P<value>"(?:[^"\\]|\\.)*"|[-+]?[0-9][0-9.eE+-]*)\s*'
)
_AND = re.compile(r"AND\b")
_EQUALITY = ("=", "!=")
_ORDER = ("<", "<=", ">", ">=")
_HEX64 = re.compile(r"(?:[0-9a-f]{64})?")


# AIP-160's comparison operators, as Python's: SQLAlchemy columns overload them to SQL.
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = _OPERATORS[op](column, value)
    return condition


def _text(raw: str, where: int) -> str:
    if not raw.startswith('"'):
        raise _error(f"expected a quoted string, got {raw}", where)
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def _number(raw: str, where: int) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _error(f"expected a number, got {raw}", where) from None
    if not math.isfinite(value):
        raise _error(f"expected a finite number, got {raw}", where)
    return value


def _time_us(raw: str, where: int) -> int:
    text = _text(raw, where)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _error(f"expected an RFC 3339 time, got {raw}", where) from None
    if moment.tzinfo is None:
        raise _error(f"the time {raw} needs a zone (Z or +hh:mm)", where)
    return int(moment.timestamp() * 1_000_000)


def _hardware_id(op: str, raw: str, where: int) -> ColumnElement[bool]:
    return _compare(DeviceRow.hardware_id, op, _text(raw, where))


def _model_sha256(op: str, raw: str, where: int) -> ColumnElement[bool]:
    sha256 = _text(raw, where)
    if not _HEX64.fullmatch(sha256):
        raise _error(f'expected 64 lower-case hex digits or "", got {raw}', where)
    return _compare(func.coalesce(DeviceRow.model_sha256, ""), op, sha256)


def _latency(op: str, raw: str, where: int) -> ColumnElement[bool]:
    column = DeviceRow.measured_latency_ms
    return and_(column.is_not(None), _compare(column, op, _number(raw, where)))


def _last_seen(op: str, raw: str, where: int) -> ColumnElement[bool]:
    column = DeviceRow.last_seen_us
    return and_(column.is_not(None), _compare(column, op, _time_us(raw, where)))


# field: (operators it takes, the condition it makes)
FIELDS: dict[str, tuple[tuple[str, ...], Callable[[str, str, int], ColumnElement[bool]]]] = {
    "hardware_id": (_EQUALITY, _hardware_id),
    "status.model_sha256": (_EQUALITY, _model_sha256),
    "status.measured_latency_ms": (_EQUALITY + _ORDER, _latency),
    "last_seen_time": (_ORDER, _last_seen),
}


def compile_filter(text: str) -> ColumnElement[bool]:
    """The SQL condition ``text`` asks for (everything when empty)."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidArgumentError(
            f"filter is {len(text)} characters long; at most {MAX_FILTER_LENGTH}", field=FIELD
        )
    if not text.strip():
        return true()
    conditions: list[ColumnElement[bool]] = []
    position = 0
    while True:
        term = _TERM.match(text, position)
        if term is None:
            raise _error("expected FIELD OP VALUE", position)
        field, op, raw = term["field"], term["op"], term["value"]
        if field not in FIELDS:
            raise _error(f"unknown field {field!r}; known: {', '.join(FIELDS)}", term.start())
        operators, condition = FIELDS[field]
        if op not in operators:
            raise _error(f"{field} takes {' '.join(operators)}, not {op}", term.start("op"))
        conditions.append(condition(op, raw, term.start("value")))
        if len(conditions) > MAX_TERMS:
            raise _error(f"at most {MAX_TERMS} terms", term.start())
        position = term.end()
        if position == len(text):
            return and_(*conditions)
        joined = _AND.match(text, position)
        if joined is None:
            raise _error("expected AND or the end", position)
        position = joined.end()


def filter_key(text: str) -> str:
    """A short name of the filter, for page tokens: a token is valid only with its filter."""
    return hashlib.sha256(text.encode()).hexdigest()[:16] if text.strip() else ""


def _error(problem: str, where: int) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"filter: {problem} (at character {where + 1}); e.g. {EXAMPLE}", field=FIELD
    )
