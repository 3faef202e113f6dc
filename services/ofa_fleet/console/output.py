"""How every command speaks: one JSON object with ``--json``, readable text otherwise."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# Progress bars and tables go to stderr so that stdout stays clean for `--json`.
stderr_console = Console(stderr=True)


def step_progress() -> Progress:
    """A counted progress bar on stderr, for commands that work through N steps."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr_console,
    )


def listing(title: str, columns: Sequence[str], **options: Any) -> Table:
    """A table whose cells wrap where the terminal is narrow, never cut with "…": names,
    sha256 and archs stay whole, so what a table shows can be pasted back."""
    table = Table(title=title, **options)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


MACHINE_FORMATS = ("json", "yaml")
_machine_format = "json"


def use_machine_format(name: str) -> None:
    """What `--json` output is written as for the rest of this process: one JSON line
    (the default), or a YAML document (``-o yaml``)."""
    global _machine_format
    if name not in MACHINE_FORMATS:
        raise ValueError(f"machine format {name!r} is not one of {MACHINE_FORMATS}")
    _machine_format = name


def write_machine(result: Any) -> None:
    """``result`` on stdout for a program: one JSON line, or a YAML document."""
    if _machine_format == "yaml":
        import yaml  # only here: the core commands run where PyYAML is not installed

        sys.stdout.write("---\n" + yaml.safe_dump(result, sort_keys=True))
    else:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()


def emit(result: dict[str, Any], as_json: bool, title: str) -> None:
    """Print ``result`` for a program (`write_machine`), or as a two-column table."""
    if as_json:
        write_machine(result)
        return
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold", overflow="fold")
    table.add_column("value", overflow="fold")
    for key, value in result.items():
        table.add_row(key, _human(value))
    Console().print(table)


def _human(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)
