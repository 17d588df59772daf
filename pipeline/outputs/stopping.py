"""A stage stopped by Ctrl-C (SIGINT) or by a scheduler's SIGTERM ends in one line.

Both signals raise ``Stopped`` in the main thread, so every ``finally`` on the way out runs: the
stage's staging folder is removed (nothing half-written survives, pipeline/outputs/staging.py)
and its published outputs are untouched. The stage then says on stderr what it leaves behind
(a training stage: where it stopped and its last resume point) and exits with 128 + the
signal's number, as a shell reports a process that signal ended. A second signal while it
cleans up is ignored; SIGKILL still ends it at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

SIGNALS = (signal.SIGINT, signal.SIGTERM)
NOTHING_KEPT = "nothing was published; run the same command to start again"


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM, as an exception (a KeyboardInterrupt: Sacred records INTERRUPTED)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum, frame) -> None:
    for other in SIGNALS:  # the clean-up runs to its end
        signal.signal(other, signal.SIG_IGN)
    raise Stopped(signum)


@contextlib.contextmanager
def one_line_stop(stage: str, kept: Callable[[KeyboardInterrupt], str] = lambda stop: NOTHING_KEPT) -> Iterator[None]:
    """Within it, SIGINT and SIGTERM stop the stage: ``stage: stopped by SIGTERM; <kept(stop)>``."""
    previous = {signum: signal.signal(signum, _raise) for signum in SIGNALS}
    try:
        yield
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        print(f"{stage}: stopped by {signal.Signals(signum).name}; {kept(stop)}", file=sys.stderr)
        raise SystemExit(128 + signum) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run(main: Callable[[], None]) -> None:
    """A stage's ``__main__``: ``main()`` under ``one_line_stop``, named by its module."""
    with one_line_stop(f"{Path(sys.argv[0]).stem} {' '.join(sys.argv[1:])}".strip()):
        main()
