"""The real DVC pipeline on a small synthetic sample, run once per test session in a temporary
copy of the repository; shared by every test that needs a trained pipeline's outputs.

Tests that change the copy (parameters, retraining) must leave it reproduced again, so that
later readers see consistent outputs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
N_APPLICATIONS = 6000
N_TRIALS = 6


def repo_files() -> list[str]:
    """What a clean clone has: tracked files plus new files not ignored by git."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def stage_env(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # The copy's own code, not the installed checkout's, so its DVC dependencies are what runs.
    env["PYTHONPATH"] = str(copy / "src")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run(args: list[str], copy: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=copy, env=stage_env(copy), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


def dvc(copy: Path, *args: str) -> str:
    return run([str(Path(sys.executable).parent / "dvc"), *args], copy).stdout


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def build_pipeline(copy: Path) -> Path:
    """Copy the repository into ``copy`` (an empty folder) and run `dvc repro` there."""
    for name in repo_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["data"]["synthetic"]["n_applications"] = N_APPLICATIONS
    params["tune"]["n_trials"] = N_TRIALS
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    run(["git", "init", "-q"], copy)
    run([*git, "add", "-A"], copy)
    run([*git, "commit", "-q", "-m", "copy"], copy)
    output = dvc(copy, "repro")
    stages = list(yaml.safe_load((copy / "dvc.yaml").read_text())["stages"])
    ran = ran_stages(output)
    assert ran == stages, f"stages run {ran}, expected every stage of dvc.yaml in order {stages}"
    return copy
