"""Reading a server's /metrics over HTTP and holding it to promtool's lint."""

from __future__ import annotations

import subprocess
import urllib.request

from tests import tools


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.status == 200
        return answer.read().decode()


def promtool_problems(exposition: str) -> str:
    """What `promtool check metrics` says of the exposition; "" when it passes."""
    result = subprocess.run(
        [str(tools.promtool()), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = (result.stdout + result.stderr).strip()
    return said or ("" if result.returncode == 0 else f"exit {result.returncode}")


def families(exposition: str) -> set[str]:
    """The metric families the exposition declares (its `# TYPE` lines)."""
    return {line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE ")}
