"""devkit.answers.wait_answers: a process that dies or never answers is named, with its log."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devkit.answers import wait_answers
from tests.support.processes import free_port


def test_a_process_that_exits_first_is_named_with_its_exit_code_and_log() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(RuntimeError, match=r"(?s)relay exited with 3:\nthe log's end"):
        wait_answers(
            f"http://127.0.0.1:{free_port()}/healthz",
            process,
            name="relay",
            log_tail=lambda: "the log's end",
            timeout=5,
        )


def test_a_process_that_never_answers_is_stopped() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(RuntimeError, match="did not answer"):
        wait_answers(
            f"http://127.0.0.1:{free_port()}/healthz",
            process,
            name="sleeper",
            log_tail=lambda: "",
            timeout=0.3,
        )
    assert process.poll() is not None
