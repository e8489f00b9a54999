"""Faults on the real pipeline: a training stage killed mid-run, and two pipeline commands at once.

On the shared pipeline copy (tests/conftest.py); each test leaves it as it found it, checked by a
`dvc repro` that runs nothing.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipeline_support import dvc, ran_stages, stage_env

pytestmark = pytest.mark.slow

DVC = str(Path(sys.executable).parent / "dvc")


def _outputs(pipeline: Path, stage: str) -> list[str]:
    """The stage's outputs and metrics files in dvc.yaml (paths relative to the copy)."""
    spec = yaml.safe_load((pipeline / "dvc.yaml").read_text())["stages"][stage]
    names = []
    for entry in [*spec.get("outs", []), *spec.get("metrics", [])]:
        names.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return names


def _files(pipeline: Path, names: list[str]) -> dict[str, str]:
    """SHA-256 of every file under the named outputs (a folder: each file in it)."""
    found = {}
    for name in names:
        path = pipeline / name
        paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in paths:
            if file.is_file():
                found[file.relative_to(pipeline).as_posix()] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


def _start(pipeline: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [DVC, *args],
        cwd=pipeline,
        env=stage_env(pipeline),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the kill reaches the stage's python too
    )


def _wait_for_line(process: subprocess.Popen[str], text: str, timeout: float = 300.0) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not seen; output:\n{''.join(lines)[-3000:]}")


def _session_commands(session: int) -> list[list[str]]:
    """The arguments of each running process of session ``session`` (Linux /proc)."""
    commands = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            command = (proc / "cmdline").read_bytes()
        except OSError:  # ended between the listing and the read
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == session and fields[0] != "Z":
            commands.append(command.decode(errors="replace").split("\0"))
    return commands


def _wait_for_stage_process(process: subprocess.Popen[str], script: str, timeout: float = 300.0) -> None:
    """Wait until a process of ``process``'s session runs ``script`` (the stage's python, started by
    DVC through pipelines/stage); fail if ``process`` ends first or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"{process.args} ended ({process.returncode}) before {script} was seen running"
            )
        if any(arg.endswith(script) for command in _session_commands(process.pid) for arg in command):
            return
        time.sleep(0.05)
    raise AssertionError(
        f"no process of the session ran {script} within {timeout:.0f} s: {_session_commands(process.pid)}"
    )


@pytest.fixture()
def kept_run_record(pipeline: Path) -> Iterator[None]:
    """A rerun of train opens a new MLflow run (models/run.json, a record of the workspace and not
    an output) and may record a new dvc.lock; both are put back afterwards, so the copy is the
    fixture's pipeline again."""
    kept = {name: (pipeline / name).read_bytes() for name in ("models/run.json", "dvc.lock")}
    try:
        yield
    finally:
        for name, content in kept.items():
            (pipeline / name).write_bytes(content)
        assert ran_stages(dvc(pipeline, "repro")) == []


def test_a_killed_training_leaves_nothing_partial_and_a_second_command_is_refused(
    pipeline: Path, kept_run_record: None
) -> None:
    outputs = _outputs(pipeline, "train")
    before = _files(pipeline, outputs)
    kept_run = (pipeline / "models/run.json").read_bytes()
    assert any(name.endswith("booster.ubj") for name in before)
    process = _start(pipeline, "repro", "--force", "--single-item", "train")
    try:
        _wait_for_line(process, "Running stage 'train'")
        # DVC locks what the running stage reads and writes: a second pipeline command on the
        # workspace is refused with a message naming the busy file and the process holding it.
        second = subprocess.run(
            [DVC, "repro"], cwd=pipeline, env=stage_env(pipeline), capture_output=True, text=True, timeout=120
        )
        assert second.returncode != 0
        message = second.stdout + second.stderr
        assert "is busy, it is being blocked by" in message, message
        assert f"(PID {process.pid}): " in message and "repro --force --single-item train" in message, message
        assert "Running stage" not in message  # it ran nothing
        # Mid-stage: the kill waits for the stage's own python process to run (a state, polled for;
        # a fixed sleep was outrun by a machine fast enough to finish the stage first).
        _wait_for_stage_process(process, "pipelines/train.py")
        assert process.poll() is None, "the train stage ended before it could be killed"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert "Updating lock file" not in rest
    # Nothing partial: each output is absent (DVC removed it before the stage ran) or exactly what
    # it was (written whole by an atomic rename); no half-written candidates folder.
    after = _files(pipeline, outputs)
    assert {name: digest for name, digest in after.items() if before.get(name) != digest} == {}
    # A rerun takes the lock the killed one held and rebuilds the same bytes.
    assert ran_stages(dvc(pipeline, "repro", "--single-item", "train")) == ["train"]
    rebuilt = _files(pipeline, outputs)
    changed = sorted(name for name in before if rebuilt.get(name) != before[name])
    assert changed == [], changed  # the same bytes: no output carries the run's id or time
    assert (pipeline / "models/run.json").read_bytes() != kept_run, "the rerun opened no MLflow run"
    assert not list((pipeline / "models").glob(".candidates.*"))  # the killed run's staging is gone
