"""Long-running operations' names, as delivery (Respecialize) and search issue them.

Both are `operations/` and 32 lower-case hex digits: delivery's sort by creation time,
search's are a digest of the request (identical requests share one search). A name of
another form cannot be one of ours, so it is refused as the caller's mistake.
"""

from __future__ import annotations

from ofa_fleet.errors import InvalidArgumentError

PREFIX = "operations/"
ID_HEX_DIGITS = 32
# ListOperations' `name`: the collection, or empty.
COLLECTION = PREFIX.rstrip("/")


def check_operation_name(name: str, field: str = "name") -> str:
    """``name`` when it has our operations' form; INVALID_ARGUMENT otherwise."""
    digits = name.removeprefix(PREFIX)
    if (
        not name.startswith(PREFIX)
        or len(digits) != ID_HEX_DIGITS
        or digits.strip("0123456789abcdef")
    ):
        raise InvalidArgumentError(
            f"{field} must be an operation's name, {PREFIX} and {ID_HEX_DIGITS} lower-case "
            f"hex digits; got {name[:80]!r}",
            field=field,
        )
    return name


def check_collection(name: str, field: str = "name") -> None:
    """ListOperations' ``name``: the collection of operations, or empty."""
    if name not in ("", COLLECTION):
        raise InvalidArgumentError(
            f"{field} must be {COLLECTION!r} or empty, got {name[:80]!r}", field=field
        )
