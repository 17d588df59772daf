"""Stage processes that start warm: a zygote that has imported what the stages import forks one
child per stage, so a stage pays no import (2.4 s for the train stage, 3.1 s for the figures;
a build runs over 200 stages).

    python -m pipeline.runtime.warm_stages      # started by parallel_repro's workers, one each

The zygote reads one request per line on stdin (JSON: the module, its arguments, the stage's
environment, its log file), forks, and answers on stdout with the child's pid, then with its exit
status once it has ended. It never runs a stage itself and holds no state between them: every
child starts from the same freshly imported interpreter, so a stage computes what a new process
would (``tests/test_pipeline_end_to_end.py`` compares the build's dvc.lock with serial
``dvc repro``'s). It imports modules only, and runs no torch operation, so no thread pool exists
when it forks (OpenMP's pools do not survive a fork). JAX is not imported here: only SMAC stages
need it, and a JAX that has started its backend must not fork.

The child is what the stage's own ``python -m`` process would be: a session of its own (the
builder ends it with a signal to its process group), the stage's environment, default signal
handlers, stdout and stderr into the stage's log, ``sys.argv`` as the command line gave it, and
the exit status of ``SystemExit`` (1 after an uncaught exception, whose traceback is in the log).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import runpy
import signal
import sys
import traceback

# What the stages import: pipeline/stages/* and the analyses they run, the learners, the tasks.
# The pipeline package first: it fixes the kernels and threads before torch loads (OpenMP reads
# its thread count when its library loads). Named as strings: the builder runs stages, it does
# not use them (tests/test_layout.py).
WARM_MODULES = (
    "pipeline", "torch", "numpy", "pandas", "matplotlib.pyplot", "sacred", "envs", "algorithms.learners",
    "pipeline.stages.train", "pipeline.stages.evaluate", "pipeline.stages.aggregate",
    "pipeline.stages.figures", "pipeline.stages.report", "pipeline.design.code_digests",
)  # fmt: skip


def child(request: dict) -> None:
    """In the forked child: become the stage's process and run it; never returns."""
    code = 1
    try:
        os.setsid()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        importlib.reload(sys.modules["pipeline"])  # its numeric environment again, from the stage's own
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.argv = [request["module"], *request["args"]]
        sys.modules.pop(request["module"], None)  # run as __main__, as `python -m` does, not beside it
        try:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            if done.code is not None and not isinstance(done.code, int):
                print(done.code, file=sys.stderr)
        except KeyboardInterrupt:
            code = 128 + signal.SIGINT
        except BaseException:
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def serve() -> None:
    for name in WARM_MODULES:
        __import__(name)
    answer = sys.stdout
    print(json.dumps({"ready": os.getpid()}), file=answer, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(request)
        print(json.dumps({"pid": pid}), file=answer, flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), file=answer, flush=True)


if __name__ == "__main__":
    serve()
