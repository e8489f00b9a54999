"""Acceptance scenarios of monitoring: the real pipeline, up to its `monitor` stage, on two simulations.

- ``default``: params.yaml as it is (``data.synthetic.macro_cycle: true``, the downturn late in the
  window). Expected: the downturn months raise an alert; the first month fired and its rule are
  reported.
- ``stable``: the same with ``macro_cycle: false`` (the generator without the macro cycle).
  Expected: no red over the same window.

Each scenario runs in its own fresh copy of the working tree (tracked files and untracked files git
does not ignore, as a clean clone plus the uncommitted work; ``git ls-files -co --exclude-standard``
piped to tar), committed to a new git repository there as tests/pipeline_support.py does, with
``.venv`` a symbolic link to this checkout's environment (``pipelines/stage`` runs
``<repo>/.venv/bin/python``) and ``PYTHONPATH`` the copy's ``src``, so the copy's code runs. A fresh
copy per scenario: the tuning study persists between runs (``models/tuning/study.journal``), and one
scenario's trials must not seed the other's. The scenario's params.yaml is edited in the copy (a
text replace of ``macro_cycle: true``, checked by reading the YAML back), then
``.venv/bin/dvc repro monitor`` runs every stage up to ``monitor`` (the reviewer report is not
needed). MLFLOW_* variables are dropped, so each copy logs to its own ``mlflow.db``.

Read back from the copy: ``reports/monitoring/alerts.json``, ``lights.csv`` and ``summary.json``.
Per scenario: the overall light; per rule its light, first month fired (amber or red), first red
month, months amber or red, months red; the first month any rule fired and the first red month
(with the rules); the months with a red; the window judged (the months after the model's reference
window with enough rows); the stage wall times. For context, the macro cycle's effect (log-odds
added to the true PD, ``scoring.data.synthetic.macro_effect``) by judged month for the default
simulation.

Results go to benchmarks/results/monitoring_scenarios.json and .md (and are printed). Exit status 1
when an expectation fails (the results are written first).

    python benchmarks/monitoring_scenarios.py [--scenarios default stable] [--keep]
    python benchmarks/monitoring_scenarios.py --applications 20000 --trials 4   # a quick try only
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "monitoring_scenarios.json"
RESULTS_MD = RESULTS.with_suffix(".md")
VENV = REPO / ".venv"
SCENARIOS: dict[str, bool] = {"default": True, "stable": False}  # name -> data.synthetic.macro_cycle
MACRO_KEY = re.compile(r"^(\s*macro_cycle:\s*)(true|false)\b", re.MULTILINE)
REPRO_TIMEOUT_S = 1800


# --------------------------------------------------------------------------- the copy


def repo_files() -> list[str]:
    """What a clean clone has, plus the uncommitted work: tracked files and new files not ignored."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def make_copy(dest: Path) -> int:
    """The working tree's files into ``dest`` (tar through a pipe), committed to a new git repository."""
    names = repo_files()
    with subprocess.Popen(
        ["tar", "--null", "--files-from=-", "-cf", "-"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as pack:
        assert pack.stdin is not None and pack.stdout is not None
        unpack = subprocess.Popen(["tar", "-xf", "-"], cwd=dest, stdin=pack.stdout)
        pack.stdout.close()
        pack.stdin.write("\0".join(names).encode() + b"\0")
        pack.stdin.close()
        if unpack.wait() != 0 or pack.wait() != 0:
            raise RuntimeError(f"copying the working tree to {dest} failed")
    (dest / ".venv").symlink_to(VENV, target_is_directory=True)
    git = ["git", "-c", "user.name=scenarios", "-c", "user.email=scenarios@example.invalid"]
    for cmd in (["git", "init", "-q"], [*git, "add", "-A"], [*git, "commit", "-q", "-m", "scenario copy"]):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return len(names)


def set_macro_cycle(params_path: Path, value: bool) -> dict[str, Any]:
    """``data.synthetic.macro_cycle`` set to ``value`` by a text replace (comments kept), read back."""
    import yaml

    text = params_path.read_text(encoding="utf-8")
    if len(MACRO_KEY.findall(text)) != 1:
        raise RuntimeError(f"{params_path}: expected exactly one `macro_cycle: true|false` line")
    params_path.write_text(MACRO_KEY.sub(rf"\g<1>{'true' if value else 'false'}", text), encoding="utf-8")
    params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    synthetic = params["data"]["synthetic"]
    if params["data"]["source"] != "synthetic" or synthetic.get("macro_cycle") is not value:
        raise RuntimeError(f"{params_path}: data.synthetic.macro_cycle did not become {value}: {synthetic}")
    return params


def override_size(params_path: Path, applications: int | None, trials: int | None) -> None:
    """For a quick try only: fewer applications or tuning trials (a YAML round trip)."""
    import yaml

    params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    if applications is not None:
        params["data"]["synthetic"]["n_applications"] = applications
    if trials is not None:
        params["tune"]["n_trials"] = trials
    params_path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def stage_env(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{copy / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(copy / "src")  # the copy's code, not this checkout's
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def repro(copy: Path) -> tuple[float, dict[str, float], list[str]]:
    """`dvc repro monitor` in the copy: wall seconds, seconds per stage, the stages run."""
    cmd = [str(copy / ".venv" / "bin" / "dvc"), "repro", "monitor"]
    starts: list[tuple[str, float]] = []
    tail: list[str] = []
    start = time.perf_counter()
    with subprocess.Popen(
        cmd, cwd=copy, env=stage_env(copy), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = [*tail[-80:], line]
            if line.startswith("Running stage '"):
                name = line.split("'")[1]
                starts.append((name, time.perf_counter()))
                print(f"  {time.perf_counter() - start:6.0f} s  stage {name}", flush=True)
        returncode = proc.wait(timeout=REPRO_TIMEOUT_S)
    wall = time.perf_counter() - start
    if returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({returncode}) in {copy}:\n{''.join(tail)}")
    ends = [t for _, t in starts[1:]] + [start + wall]
    stages = {name: round(end - begin, 1) for (name, begin), end in zip(starts, ends, strict=True)}
    return wall, stages, [name for name, _ in starts]


# --------------------------------------------------------------------------- reading the outcome


def read_outcome(copy: Path) -> dict[str, Any]:
    out_dir = copy / "reports" / "monitoring"
    alerts = json.loads((out_dir / "alerts.json").read_text())
    summary = json.loads((out_dir / "summary.json").read_text())
    with (out_dir / "lights.csv").open(newline="") as handle:
        lights = list(csv.DictReader(handle))
    rules = list(alerts["rules"])
    per_rule = {
        rule: {
            key: entry[key]
            for key in (
                "light",
                "first_fired",
                "first_fired_value",
                "first_red",
                "months_amber_or_red",
                "months_red",
                "longest_red_streak",
            )
        }
        for rule, entry in alerts["rules"].items()
    }

    def first(level: tuple[str, ...]) -> tuple[str | None, list[str]]:
        for row in lights:  # lights.csv is in month order
            hit = [rule for rule in rules if row[rule] in level]
            if hit:
                return row["label"], hit
        return None, []

    first_fired, fired_rules = first(("amber", "red"))
    first_red, red_rules = first(("red",))
    months_red = [row["label"] for row in lights if any(row[r] == "red" for r in rules)]
    months_fired = [row["label"] for row in lights if any(row[r] in ("amber", "red") for r in rules)]
    judged = [row["label"] for row in lights]
    return {
        "overall": alerts["overall"],
        "first_month_fired": first_fired,
        "first_month_fired_rules": fired_rules,
        "first_red_month": first_red,
        "first_red_month_rules": red_rules,
        "months_red": months_red,
        "n_months_red": len(months_red),
        "n_months_amber_or_red": len(months_fired),
        "retrain": alerts["retrain"],
        "rules": per_rule,
        "window": {
            "reference_window": summary.get("reference_window"),
            "first_month_judged": judged[0] if judged else None,
            "last_month_judged": judged[-1] if judged else None,
            "n_months_judged": summary.get("n_months_judged", len(judged)),
            "n_months_in_batch": summary.get("n_months"),
        },
        "batch_rows": summary.get("batch_rows"),
        "history_rows": summary.get("history_rows"),
        "history_quarantined_rows": (summary.get("history") or {}).get("n_quarantined"),
        "lights": lights,
    }


def macro_by_month(synthetic: dict[str, Any], labels: list[str]) -> dict[str, float]:
    """The macro cycle's log-odds (``macro_effect``) at each month label of the default simulation
    (``synthetic``: the scenario's start_date and months)."""
    sys.path.insert(0, str(REPO / "src"))
    import datetime as dt

    from scoring.data.synthetic import macro_effect

    start = dt.date.fromisoformat(str(synthetic["start_date"]))
    months = int(synthetic["months"])
    index = [
        (int(y) - start.year) * 12 + int(m) - start.month for y, m in (label.split("-") for label in labels)
    ]
    effect = macro_effect(index, months)
    return {label: round(float(v), 3) for label, v in zip(labels, effect, strict=True)}


# --------------------------------------------------------------------------- one scenario


def run_scenario(name: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    copy = root / name
    copy.mkdir()
    started = time.perf_counter()
    n_files = make_copy(copy)
    if args.applications is not None or args.trials is not None:
        override_size(copy / "params.yaml", args.applications, args.trials)
    params = set_macro_cycle(copy / "params.yaml", SCENARIOS[name])
    copy_s = time.perf_counter() - started
    print(f"scenario {name}: macro_cycle {SCENARIOS[name]}, {n_files} files copied to {copy}", flush=True)
    load_before = os.getloadavg()
    wall, stages, ran = repro(copy)
    load_after = os.getloadavg()
    outcome = read_outcome(copy)
    synthetic = params["data"]["synthetic"]
    return {
        "scenario": name,
        "macro_cycle": SCENARIOS[name],
        "params": {
            "seed": params["seed"],
            "n_applications": synthetic["n_applications"],
            "start_date": str(synthetic["start_date"]),
            "months": synthetic["months"],
            "tune_n_trials": params["tune"]["n_trials"],
            "monitor_window": params["monitor"]["window"],
        },
        "files_copied": n_files,
        "copy_seconds": round(copy_s, 1),
        "dvc_repro_monitor_seconds": round(wall, 1),
        "stage_seconds": stages,
        "stages_run": ran,
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        **outcome,
    }


def expectations(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    if "default" in results:
        d = results["default"]
        checks["default_raises_an_alert"] = d["first_month_fired"] is not None
        checks["default_first_alert"] = {
            "month": d["first_month_fired"],
            "rules": d["first_month_fired_rules"],
        }
        checks["default_first_red"] = {"month": d["first_red_month"], "rules": d["first_red_month_rules"]}
    if "stable" in results:
        s = results["stable"]
        checks["stable_no_red"] = s["n_months_red"] == 0
        if "default" in results:
            checks["same_window"] = s["window"] == results["default"]["window"]
    checks["passed"] = all(v for k, v in checks.items() if isinstance(v, bool))
    return checks


# --------------------------------------------------------------------------- output


def markdown(doc: dict[str, Any]) -> str:
    machine, results = doc["machine"], doc["scenarios"]
    lines = [
        "# Monitoring acceptance scenarios (benchmarks/monitoring_scenarios.py)",
        "",
        f"Measured {doc['date']} on {machine['cpus']} CPUs ({machine['platform']}, "
        f"Python {machine['python']}), from the working tree at {doc['git_head'][:10]} with "
        f"{doc['uncommitted_paths']} uncommitted paths. Each scenario: a fresh copy of the working tree, "
        "`dvc repro monitor` (every stage up to `monitor`), then "
        "reports/monitoring/alerts.json and lights.csv read back.",
        "",
        "| scenario | macro cycle | overall | first month fired (rules) | first red month (rules) "
        "| months red | window judged | repro (s) | load before/after |",
        "|---|---|---|---|---|---|---|---:|---|",
    ]
    for name, r in results.items():
        w = r["window"]
        fired = (
            f"{r['first_month_fired']} ({', '.join(r['first_month_fired_rules'])})"
            if r["first_month_fired"]
            else "-"
        )
        red = (
            f"{r['first_red_month']} ({', '.join(r['first_red_month_rules'])})"
            if r["first_red_month"]
            else "-"
        )
        months_red = ", ".join(r["months_red"]) or "none"
        load = r["load_average_before_after"]
        lines.append(
            f"| {name} | {'on' if r['macro_cycle'] else 'off'} | {r['overall']} | {fired} | {red} "
            f"| {months_red} | "
            f"{w['first_month_judged']}..{w['last_month_judged']} ({w['n_months_judged']} months) | "
            f"{r['dvc_repro_monitor_seconds']} | {load[0]} / {load[1]} |"
        )
    lines += ["", "Per rule: light; first month amber or red; first red; months amber or red / red.", ""]
    names = list(results)
    lines.append("| rule | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for rule in next(iter(results.values()))["rules"]:
        cells = []
        for name in names:
            e = results[name]["rules"][rule]
            cells.append(
                f"{e['light']}; {e['first_fired'] or '-'}; {e['first_red'] or '-'}; "
                f"{e['months_amber_or_red']} / {e['months_red']}"
            )
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    if "default" in results and results["default"].get("macro_effect_by_month"):
        macro = results["default"]["macro_effect_by_month"]
        lines += [
            "",
            "Macro cycle of the default simulation (log-odds added to the true PD, by application "
            "month) at the judged months: " + ", ".join(f"{m} {v:.2f}" for m, v in macro.items()) + ".",
        ]
    checks = doc["expectations"]
    lines += ["", "Expectations: " + "; ".join(f"{k}: {v}" for k, v in checks.items()) + "."]
    for name, r in results.items():
        stages = ", ".join(f"{k} {v}" for k, v in r["stage_seconds"].items())
        lines.append(f"\nStage seconds, {name}: {stages}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument(
        "--applications", type=int, help="override n_applications (a quick try, not the acceptance)"
    )
    parser.add_argument("--trials", type=int, help="override tune.n_trials (a quick try, not the acceptance)")
    parser.add_argument("--keep", action="store_true", help="keep the copies (their paths are printed)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (VENV / "bin" / "dvc").exists():
        sys.exit(f"{VENV}/bin/dvc not found: expected the project's environment (make setup)")

    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    results: dict[str, dict[str, Any]] = {}
    root = Path(tempfile.mkdtemp(prefix="monitoring-scenarios-"))
    try:
        for name in args.scenarios:
            results[name] = run_scenario(name, args, root)
            r = results[name]
            print(
                f"scenario {name}: overall {r['overall']}, first fired {r['first_month_fired']} "
                f"{r['first_month_fired_rules']}, first red {r['first_red_month']} "
                f"{r['first_red_month_rules']}, "
                f"months red {r['months_red']} ({r['dvc_repro_monitor_seconds']} s)",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"copies kept under {root}")
        else:
            subprocess.run(["rm", "-rf", str(root)], check=False)
    if "default" in results:
        labels = [row["label"] for row in results["default"]["lights"]]
        results["default"]["macro_effect_by_month"] = macro_by_month(results["default"]["params"], labels)

    doc: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "git_head": head,
        "uncommitted_paths": len(dirty.splitlines()),
        "quick_try": args.applications is not None or args.trials is not None,
        "scenarios": results,
    }
    doc["expectations"] = expectations(results)
    from scoring.core.figures import write_results

    write_results(args.output, doc, markdown(doc))
    print(json.dumps(doc["expectations"], indent=2))
    print(f"written to {args.output} and {args.output.with_suffix('.md')}")
    if not doc["expectations"]["passed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
