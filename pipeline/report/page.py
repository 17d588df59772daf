"""The report page: every figure and table that params.yaml asks for, and the HTML around them.

``artifacts`` lists what the page shows, each with the DVC stage that writes it (provenance is
added by the report stage); ``render_page`` fills ``templates/report.html`` (Jinja2, escaped).
Files are linked by paths relative to the page, so the page works from disk wherever the
repository's layout is kept (a clone, an unpacked bundle).
"""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from pipeline.outputs import layout

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = TEMPLATES / "report.html"


def _figure(name: str, entry: dict, stem_files: list[str], stage: str, title: str) -> dict:
    png = [f for f in stem_files if f.endswith(f"/{name}.png")]
    others = [f for f in stem_files if f not in png]
    return {"kind": "figure", "name": name, "paper": entry["paper"], "title": title, "image": png[0],
            "files": others, "stage": stage, "tables": []}  # fmt: skip


def artifacts(params: dict) -> list[dict]:
    """Every figure (with its PDF and per-panel files) and every table, by the stage that writes it."""
    items = []
    for name, figure in params.get("figures", {}).items():
        files = [f for f in layout.figure_files({name: figure}) if "/" in f]
        title = ", ".join(p.get("title", p["task"]) for p in figure["panels"].values())
        items.append(_figure(name, figure, files, "figures", title))
    for name, snap in params.get("snapshots", {}).items():
        files = layout.snapshot_files(name, snap)
        items.append(_figure(name, snap, files, f"snapshot-{name}", snap.get("title", name)))
    for name, comparison in params.get("comparisons", {}).items():
        files = layout.comparison_files(name, comparison)
        item = _figure(name, comparison, [f for f in files if f.startswith("figures/")], f"compare-{name}", comparison["title"])
        item["tables"] = [f for f in files if f.endswith(".csv")]
        items.append(item)
    for name, table in params.get("tables", {}).items():
        files = layout.matrix_table_files(name) if table.get("kind") == "matrix_game" else layout.table_files(name)
        items.append({"kind": "table", "name": name, "paper": table["paper"], "title": table.get("title", name),
                      "image": None, "files": files, "stage": f"table-{name}",
                      "tables": [f for f in files if f.endswith(".csv")]})  # fmt: skip
    return items


def relative(path: str) -> str:
    return Path(os.path.relpath(path, layout.REPORT)).as_posix()


def _table_html(path: str) -> str:
    """A results table as HTML (pandas escapes the cells); a missing file says so."""
    try:
        frame = pd.read_csv(path)
    except OSError:
        return f"<p class='missing'>{path} has not been written yet.</p>"
    return frame.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.4g}", border=0, classes="data")


def render_page(rows: list[dict], scores: pd.DataFrame, items: list[dict], spent: dict, versions: dict, runs: list[str],
                learning: dict | None = None) -> str:  # fmt: skip
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    shown = []
    for item in items:
        shown.append({
            **item,
            "image": relative(item["image"]) if item["image"] else None,
            "links": [(Path(f).name, relative(f)) for f in item["files"]],
            "tables_html": [(Path(t).name, Markup(_table_html(t))) for t in item["tables"]],
        })  # fmt: skip
    scores_html = Markup(
        scores.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.4g}", border=0, classes="data")
    )
    return environment.get_template(TEMPLATE.name).render(
        claims=rows, items=shown, spent=spent, versions=versions, runs=runs, scores_html=scores_html,
        anchors={item["name"] for item in items}, learning=learning or {},
    )  # fmt: skip
