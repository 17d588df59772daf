"""Fixed policies' returns on a task (benchmarks/task_levels.py measures them into
benchmarks/measured/task_levels.json): the scale a learning curve is read against where no
independent curve of the learners exists. Harness figures (those in neither paper) draw them
as grey lines on the panels of the tasks that have them; the papers' figures stay as the papers
drew them."""

from __future__ import annotations

import json

from pipeline.design.code_files import ROOT

LEVELS = "benchmarks/measured/task_levels.json"  # relative to the repository
LEVEL_NAMES = ("random", "scripted")  # benchmarks/task_levels.py's policies


def draws_levels(figure: dict) -> bool:
    """A harness figure of returns draws the levels (a win rate has none to draw)."""
    return figure["paper"] == "harness" and figure.get("metric", "return") == "return"


def figure_levels(figure: dict, tasks: dict) -> dict[str, dict[str, float]]:
    """Per panel task of ``figure``, its measured levels' mean returns ({} where none). A level
    measured on other task settings than params.yaml's ``tasks`` stops in one line."""
    if not draws_levels(figure):
        return {}
    try:
        table = json.loads((ROOT / LEVELS).read_text())["runs"]
    except (OSError, ValueError, KeyError) as err:
        raise SystemExit(f"figures: {LEVELS} cannot be read ({err})") from None
    levels = {}
    for task in dict.fromkeys(panel["task"] for panel in figure["panels"].values()):
        row = table.get(task)
        if row is None:
            continue
        if row["task"] != {"id": tasks[task]["id"], "kwargs": tasks[task].get("kwargs", {})}:
            raise SystemExit(
                f"figures: {LEVELS} measured {task} with other settings than params.yaml's: "
                f"remeasure it (python -m benchmarks.task_levels --tasks {task})"
            )
        levels[task] = {name: row[name]["mean_return"] for name in LEVEL_NAMES if name in row}
    return levels
