"""Running the commands as a user does: in-process (exit status and stderr lines) or as a
real process of scripts/ (pipes, encodings, signals)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from _scripts import SCRIPTS

ROOT = SCRIPTS.parent
#: The bundled sample, few steps: every command's data for these tests.
SAMPLE = ["--dataset", "mnist-sample", "--quiet"]
SWEEP = [*SAMPLE, "--iters", "5", "--batch-size", "50"]


def status(main, argv) -> int:
    """The exit status of ``main(argv)``: its return value or its SystemExit code."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def error_line(err: str, prog: str) -> str:
    """The one ``prog: error:`` line that ``err`` must be (no traceback, nothing else)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1, err
    return errors[0]


def script_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", **extra}


def script(name: str, *args: str, **popen) -> subprocess.Popen:
    """scripts/NAME.py with ``args`` as a real process (stdout and stderr piped, text)."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    popen.setdefault("env", script_env())
    return subprocess.Popen(
        [sys.executable, str(SCRIPTS / f"{name}.py"), *args], text=True, **popen
    )


def wait_for(condition, timeout: float = 60.0, what: str = "the condition") -> None:
    """Poll ``condition()`` every 20 ms, at most ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)
