"""The committed tables of measured numbers (``benchmarks/measured/*.json``): one row per run,
merged in as each run is measured, so a long measurement can be taken in sittings."""

from __future__ import annotations

import json
from pathlib import Path

FOLDER = Path("benchmarks/measured")


def merge(path: Path, name: str, row: dict) -> None:
    """Put ``row`` under ``runs.<name>`` of the table at ``path`` (written whole: a temporary
    file renamed over it, so an interrupted measurement leaves the previous table)."""
    table = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    table["runs"][name] = row
    table["runs"] = dict(sorted(table["runs"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=1) + "\n")
    tmp.replace(path)
