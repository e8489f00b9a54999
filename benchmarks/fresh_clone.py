"""Benchmark: the README's two commands on a fresh clone, as a new user runs them.

`git clone` of this checkout's HEAD into a temporary folder (with `../shared` linked beside it,
as CI has it), then `make run` timed from nothing (set-up included), a second `make run`
(which must rerun nothing), and with ``--with-test`` `make test` in another fresh clone. After
each `make run`, `git status --porcelain` of the clone: the pipeline's outputs must leave the
committed files (dvc.lock among them) as they were. Baseline in the same run: `python -c pass`
and `git clone` alone, so the set-up's share is visible.

Results go to benchmarks/results/fresh_clone.json and .md with their provenance.

    python benchmarks/fresh_clone.py              # make run twice (about 5 minutes on 2 cores)
    python benchmarks/fresh_clone.py --with-test  # and make test (about 16 minutes more)
    python benchmarks/fresh_clone.py --busy       # and make run beside CPU hogs (about 8 minutes more)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "fresh_clone.json"


def _clone(parent: Path) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    shared = REPO.parent / "shared"
    if shared.exists():
        (parent / "shared").symlink_to(shared)
    clone = parent / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    return clone


def _timed(command: list[str], cwd: Path, log: Path) -> tuple[float, int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "MLFLOW_"))}
    start = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - start, code, log.read_text(errors="replace")[-3000:]


def _status(clone: Path) -> list[str]:
    out = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.strip()]


def run_twice(parent: Path) -> dict[str, Any]:
    clone_start = time.perf_counter()
    clone = _clone(parent)
    clone_s = time.perf_counter() - clone_start
    load_before = os.getloadavg()
    first_s, first_code, first_tail = _timed(["make", "run"], clone, parent / "run1.log")
    if first_code != 0:
        raise SystemExit(f"make run failed ({first_code}):\n{first_tail}")
    status_first = _status(clone)
    second_s, second_code, second_tail = _timed(["make", "run"], clone, parent / "run2.log")
    if second_code != 0:
        raise SystemExit(f"the second make run failed ({second_code}):\n{second_tail}")
    reran = re.findall(r"Running stage '([^']+)'", second_tail)
    lock = (clone / "dvc.lock").read_bytes() == (REPO / "dvc.lock").read_bytes()
    return {
        "git_clone_seconds": round(clone_s, 1),
        "make_run_seconds": round(first_s, 1),
        "second_make_run_seconds": round(second_s, 1),
        "second_make_run_stages_rerun": reran,
        "git_status_after_make_run": status_first,
        "git_status_after_second_make_run": _status(clone),
        "dvc_lock_as_committed": lock,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def _outputs(lock: Path) -> dict[str, str]:
    import yaml

    stages = yaml.safe_load(lock.read_text())["stages"]
    return {out["path"]: out.get("md5", "") for stage in stages.values() for out in stage.get("outs", [])}


def busy_run(parent: Path, reference: Path) -> dict[str, Any]:
    """`make run` in another fresh clone with one busy-looping process per core beside it; the
    outputs whose hashes differ from the quiet run's (``reference``: its dvc.lock)."""
    clone = _clone(parent)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        seconds, code, tail = _timed(["make", "run"], clone, parent / "busy.log")
    finally:
        for hog in hogs:
            hog.kill()
    if code != 0:
        raise SystemExit(f"make run beside the CPU hogs failed ({code}):\n{tail}")
    quiet, busy = _outputs(reference), _outputs(clone / "dvc.lock")
    return {
        "make_run_seconds_beside_hogs": round(seconds, 1),
        "hogs": len(hogs),
        "outputs_differing_from_the_quiet_run": sorted(k for k in quiet if quiet[k] != busy.get(k)),
        "dvc_lock_same_as_quiet_run": (clone / "dvc.lock").read_bytes() == reference.read_bytes(),
        "git_status_after": _status(clone),
    }


def run_tests(parent: Path) -> dict[str, Any]:
    clone = _clone(parent)
    seconds, code, tail = _timed(["make", "test"], clone, parent / "test.log")
    summary = re.findall(r"=+ (.*(?:passed|failed).*) in [\d.]+s", tail)
    counts = {
        k: int(n)
        for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", summary[-1] if summary else "")
    }
    return {"make_test_seconds": round(seconds, 1), "make_test_exit_code": code, "make_test_counts": counts}


def markdown(doc: dict[str, Any]) -> str:
    run = doc["make_run"]
    lines = [
        "# A fresh clone's two commands (benchmarks/fresh_clone.py)",
        "",
        f"`make run` from nothing (set-up included): {run['make_run_seconds']:.0f} s; a second `make run` "
        f"{run['second_make_run_seconds']:.0f} s, stages rerun: "
        f"{run['second_make_run_stages_rerun'] or 'none'}.",
        f"`git status` after it: {run['git_status_after_make_run'] or 'clean'}; dvc.lock as committed: "
        f"{run['dvc_lock_as_committed']}. Load average {run['load_average_before']} before, "
        f"{run['load_average_after']} after.",
    ]
    if "busy" in doc:
        busy = doc["busy"]
        lines += [
            "",
            f"`make run` beside {busy['hogs']} busy-looping processes: "
            f"{busy['make_run_seconds_beside_hogs']:.0f} s; outputs whose hash differs from the quiet "
            f"run's: {busy['outputs_differing_from_the_quiet_run'] or 'none'}; dvc.lock the same as the "
            f"quiet run's: {busy['dvc_lock_same_as_quiet_run']}; `git status` after it: "
            f"{busy['git_status_after'] or 'clean'}.",
        ]
    if "make_test" in doc:
        test = doc["make_test"]
        lines += [
            "",
            f"`make test`: {test['make_test_seconds']:.0f} s, exit {test['make_test_exit_code']}, "
            f"{test['make_test_counts']}.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--with-test", action="store_true", help="also time make test in a fresh clone")
    parser.add_argument(
        "--busy", action="store_true", help="also make run beside CPU hogs and compare outputs"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from scoring.core.figures import write_results

    doc: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fresh-clone-") as tmp:
        doc["make_run"] = run_twice(Path(tmp) / "run")
        if args.busy:
            doc["busy"] = busy_run(Path(tmp) / "busy", Path(tmp) / "run" / "clone" / "dvc.lock")
    if args.with_test:
        with tempfile.TemporaryDirectory(prefix="fresh-clone-test-") as tmp:
            doc["make_test"] = run_tests(Path(tmp))
    write_results(RESULTS, doc, markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
