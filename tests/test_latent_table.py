"""VM3-AC Table 1's stage (pipeline/analyses/vm3ac/latent_table.py): shared_seed is shown as what it is, the
same episodes as sampled (one row), and a difference between the two stops the stage."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.analyses.vm3ac.latent_table import check_same_draws, markdown


def rows(shared_offset: float = 0.0) -> pd.DataFrame:
    out = []
    for mode, base in (("sampled", 10.0), ("zero", 12.0), ("shared_seed", 10.0 + shared_offset), ("independent", 7.0)):
        for c, column in enumerate(["PP (N=2)", "PP (N=3)"]):
            out.append({"mode": mode, "column": column, "task": f"t{c}", "run": "r", "mean": base + c,
                        "ci95_low": base + c - 1, "ci95_high": base + c + 1, "seeds": 3, "episodes": 4,
                        "paper": 413.0 if mode == "sampled" else float("nan")})
    return pd.DataFrame(out)


def test_shared_seed_joins_sampleds_row():
    text = markdown("Table 1", rows())
    lines = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert [line.split("|")[1].strip() for line in lines] == [
        "sampled = shared_seed (the same z draws: no communication needed)", "zero", "independent"]
    assert "10.0 ± 1.0 (413)" in lines[0]
    check_same_draws(rows())  # identical: passes


def test_a_shared_seed_that_differs_from_sampled_stops_the_stage():
    with pytest.raises(SystemExit, match="shared_seed and sampled differ"):
        check_same_draws(rows(shared_offset=0.5))
