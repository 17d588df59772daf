"""Sacred experiments for the stages: a FileStorageObserver at a fixed folder beside the run's
outputs, plus one optional observer named by an environment variable (a lab's Sacred database:
``HARNESS_SACRED_OBSERVER=postgresql://user@host/db``, ``mongodb://...`` or a folder)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

# sacred 0.8.7 imports pkg_resources, which warns on every start; the warning is not ours to fix.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

from sacred import SETTINGS, Experiment  # noqa: E402  (stages import Experiment from here)
from sacred.observers import FileStorageObserver  # noqa: E402

SETTINGS.CAPTURE_MODE = "sys"  # file-descriptor capture would swallow pytest's and DVC's output
EXTRA_OBSERVER_ENV = "HARNESS_SACRED_OBSERVER"
RUN_ID = "train"  # fixed run folder: results/runs/<run>/sacred/train/


SQL_SCHEMES = ("postgresql", "mysql", "mariadb", "sqlite")  # SQLAlchemy database URLs


def _unreachable(url: str, err: Exception) -> SystemExit:
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return SystemExit(f"{EXTRA_OBSERVER_ENV}: cannot reach {url}: {type(err).__name__}: {first}")


def extra_observer(url: str):
    """``mongodb://...`` -> MongoObserver (needs pymongo); ``postgresql://...`` (or another
    SQLAlchemy URL of SQL_SCHEMES, ``+driver`` allowed) -> Sacred's SQL observer with metrics
    (needs the ``tracking`` extra); anything else without ``://`` -> a folder.

    The database is reached here, before the run starts: a misspelt scheme would otherwise make
    a local folder named after it, and an unreachable server a traceback from inside Sacred."""
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme == "mongodb":  # mongodb:// and mongodb+srv://
        try:
            import pymongo
            from sacred.observers import MongoObserver
        except ImportError as err:
            raise SystemExit(f"{EXTRA_OBSERVER_ENV}: {url} needs pymongo ({err})") from None
        try:
            pymongo.MongoClient(url, serverSelectionTimeoutMS=5000).admin.command("ping")
        except Exception as err:
            raise _unreachable(url, err) from None
        return MongoObserver(url=url)
    if scheme in SQL_SCHEMES:
        import sqlalchemy as sa

        from pipeline.runtime.sql_observer import SqlMetricsObserver

        try:
            shown = sa.engine.make_url(url).render_as_string(hide_password=True)
            observer = SqlMetricsObserver(url)
            with observer.engine.connect():
                pass
        except Exception as err:  # a bad URL, a missing driver, a server that does not answer
            raise _unreachable(locals().get("shown", url), err) from None
        return observer
    if scheme:
        known = ", ".join(("mongodb", *SQL_SCHEMES))
        raise SystemExit(f"{EXTRA_OBSERVER_ENV}: unknown scheme {scheme!r} in {url} (known: {known}; or a folder path)")
    return FileStorageObserver(url)


class FixedFolderObserver(FileStorageObserver):
    """A FileStorageObserver that always records into ``<folder>/train``.

    Sacred hands every observer the id the first one chose; a lab's database picks its own ids,
    so this observer ignores the one it is given and keeps the folder DVC tracks fixed.
    """

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        return super().started_event(
            ex_info, command, host_info, start_time, config, meta_info, RUN_ID
        )


def observe(ex: Experiment, folder: Path) -> Experiment:
    """Record ``ex`` in ``folder`` (and in the extra observer, if the variable names one).

    The Experiment itself is created in the stage module, so Sacred stores that module and the
    project modules it imports as the run's sources.
    """
    url = os.environ.get(EXTRA_OBSERVER_ENV)
    if url:
        ex.observers.append(extra_observer(url))  # first, so it chooses the run's id
    ex.observers.append(FixedFolderObserver(str(folder)))
    return ex
