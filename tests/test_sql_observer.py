"""A lab's shared Sacred database: a real PostgreSQL server started for the test (Debian's
`postgresql` package; .ci/run installs it), a training stage pointed at it through
HARNESS_SACRED_OBSERVER, and the run's config, metrics and status read back with SQL."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from pipeline.stages import train

RUN = "vm3ac-cooperative_navigation_n3"


def server_binaries() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


@pytest.fixture
def postgres():
    """A PostgreSQL server on a Unix socket in a fresh folder; yields its SQLAlchemy URL."""
    bindir = server_binaries()
    if bindir is None:
        pytest.skip("PostgreSQL's server is not installed (apt-get install postgresql; .ci/run does it)")
    folder = Path(tempfile.mkdtemp(prefix="harness-pg-"))  # not under pytest's folder: the
    as_user = []  # server's user must reach it
    if os.geteuid() == 0:  # the server refuses to run as root: Debian's package adds `postgres`
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = folder / "data", folder / "server.log"

    def pg(*args):
        done = subprocess.run([*as_user, *args], capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stdout} {done.stderr}"

    pg(f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "lab", "--no-sync")
    options = f"-k {folder} -c listen_addresses='' -p 5439 -F"
    pg(f"{bindir}/pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    try:
        yield f"postgresql://lab@/postgres?host={folder}&port=5439"  # the README's form
    finally:
        pg(f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder)


@pytest.fixture
def short_dir():
    """A repository folder with a path under 64 characters (see the xfail test below); pytest's
    own tmp_path under a parallel worker is longer."""
    folder = Path(tempfile.mkdtemp(prefix="harness-sql-"))
    yield folder
    shutil.rmtree(folder)


def test_a_training_run_is_recorded_in_a_real_postgresql_database(postgres, short_dir, monkeypatch, tiny_params):
    monkeypatch.chdir(short_dir)
    (short_dir / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    monkeypatch.setenv("HARNESS_SACRED_OBSERVER", postgres)
    train.main([RUN])
    train.main([RUN])  # a second run gets its own row and metrics
    engine = sa.create_engine(postgres)
    with engine.connect() as db:
        runs = db.execute(sa.text("SELECT run_id, status, config, info FROM run ORDER BY id")).all()
        assert [r.status for r in runs] == ["COMPLETED", "COMPLETED"]
        assert len({r.run_id for r in runs}) == 2
        config = json.loads(runs[0].config)
        assert config["run"] == RUN and config["seeds"] == [0, 1, 2]
        assert json.loads(runs[0].info)["storage"] == "TransitionReplay"
        curve = db.execute(
            sa.text("SELECT step, value FROM metric WHERE run_id = :run AND name = 'return.seed0' ORDER BY step"),
            {"run": runs[1].run_id},
        ).all()
    ours = json.loads((short_dir / f"results/runs/{RUN}/sacred/train/metrics.json").read_text())["return.seed0"]
    assert [step for step, _ in curve] == ours["steps"] == [0, 25, 50]
    assert [value for _, value in curve] == pytest.approx(ours["values"])


@pytest.mark.xfail(strict=True, raises=sa.exc.DataError, reason=(
    "known bug, not fixed: Sacred's experiment.base_dir column is VARCHAR(64), so PostgreSQL refuses "
    "a repository path over 64 characters; the fix (widen it in pipeline/runtime/sql_observer.py, as "
    "experiment.name is) changes every train stage's code digest, so it waits for a change that "
    "retrains the runs anyway"))
def test_a_repository_path_over_64_characters_is_recorded(postgres, tmp_path, monkeypatch, tiny_params):
    root = tmp_path / ("a-researchers-long-folder-name-" * 3)
    root.mkdir()
    monkeypatch.chdir(root)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    monkeypatch.setenv("HARNESS_SACRED_OBSERVER", postgres)
    train.main([RUN])


@pytest.mark.parametrize(
    "url, says",
    [
        # nothing listens on port 1: refused at once
        ("postgresql://lab:secret@127.0.0.1:1/lab", "HARNESS_SACRED_OBSERVER: cannot reach postgresql://lab:***@127.0.0.1:1/lab: OperationalError: "),
        ("postgresq://lab@127.0.0.1/lab", "HARNESS_SACRED_OBSERVER: unknown scheme 'postgresq' in postgresq://lab@127.0.0.1/lab"),
        ("postgresql+nodriver://lab@127.0.0.1/lab", "HARNESS_SACRED_OBSERVER: cannot reach postgresql+nodriver://lab@127.0.0.1/lab: NoSuchModuleError: "),
    ],
)
def test_an_observer_that_cannot_be_used_stops_the_stage_in_one_line(url, says, tmp_path, monkeypatch, tiny_params):
    """Before, a misspelt scheme made a local folder named after it and an unreachable server
    gave a traceback from inside Sacred after the stage had started."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params))
    monkeypatch.setenv("HARNESS_SACRED_OBSERVER", url)
    with pytest.raises(SystemExit) as err:
        train.main([RUN])
    message = str(err.value)
    assert message.startswith(says) and "\n" not in message
    assert "secret" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # no folder, no outputs
