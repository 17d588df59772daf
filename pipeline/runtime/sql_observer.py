"""Sacred's SQL observer with the metrics it lacks: sacred 0.8.7's ``SqlObserver`` records a
run's config, host, status and result but drops ``log_scalar`` metrics (it has no
``log_metrics``). A lab's database should hold the learning curves too, so metrics go to one
more table, ``metric``, declared on Sacred's own schema so that the observer creates it with
the others. Sacred's ``experiment.name`` column holds 32 characters, fewer than our stage names
(``train_vm3ac_no_latent-cooperative_navigation_n3``): PostgreSQL refuses the insert where
SQLite would not, so the schema this module creates widens it (a database made earlier by
plain Sacred keeps its 32 and must be altered by hand)."""

from __future__ import annotations

import sqlalchemy as sa
from sacred.observers import SqlObserver
from sacred.observers.sql_bases import Base, Experiment

EXPERIMENT_NAME_LENGTH = 128
Experiment.__table__.c.name.type.length = EXPERIMENT_NAME_LENGTH


class Metric(Base):
    """One logged value: run, name, step, value, time."""

    __tablename__ = "metric"
    id = sa.Column(sa.Integer, primary_key=True)
    run_id = sa.Column(sa.String(24), sa.ForeignKey("run.run_id"), index=True)
    name = sa.Column(sa.String(128), index=True)
    step = sa.Column(sa.BigInteger)
    value = sa.Column(sa.Float)
    timestamp = sa.Column(sa.DateTime)


class SqlMetricsObserver(SqlObserver):
    def log_metrics(self, metrics_by_name, info) -> None:
        """Sacred calls this at each heartbeat and at the end with what was logged since."""
        for name, logged in metrics_by_name.items():
            for step, value, when in zip(logged["steps"], logged["values"], logged["timestamps"]):
                self.session.add(Metric(run_id=self.run.run_id, name=name, step=int(step), value=float(value), timestamp=when))
        self.save()
