"""Benchmark: the four public credit datasets through the README's bring-your-own commands.

For each dataset in ../shared/data (read by path), in one fresh copy of the repository, in the
order the README lists them:

1. the README's command as a user types it (`dvc exp run -n NAME -S data.source=file -S ...`),
   with each stage's wall time;
2. `scoring score` of the exported model on the raw file: rows in, scored, rejected (they must
   reconcile), the scored rows flagged with a value training did not show, and its wall time;
   beside it the evaluate stage's own account of the splits (``reports/metrics.json`` ``scoring``);
3. test AUC of every pipeline model (uncalibrated PD) and of the exported champion, beside
   three peers fitted in this same run on the same train+valid rows and scored on the same
   test rows (the baseline): logistic regression on one-hot and standardised inputs,
   ``XGBClassifier()`` and ``HistGradientBoostingClassifier()`` with their defaults.

Results go to benchmarks/results/byo.json and byo.md.

    python benchmarks/byo.py [--datasets taiwan hmeq german australian] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
# The stages' environment as this process got it: the peers below limit their own threads.
STAGE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
# The copy has no .venv of its own: its stages run with this interpreter (see pipelines/stage).
STAGE_ENV["SCORING_PYTHON"] = sys.executable


@dataclass(frozen=True)
class Command:
    """One README command: the experiment's name and its -S settings, the file path aside."""

    name: str
    file: str
    settings: tuple[str, ...]


# The README's commands, in its order (keep the two in step).
COMMANDS: tuple[Command, ...] = (
    Command(
        "taiwan",
        "taiwan_default_credit_card.csv",
        (
            "data.file.id_column=ID",
            "data.file.target_column=default.payment.next.month",
            "data.file.drop_columns=[]",
        ),
    ),
    Command(
        "hmeq",
        "hmeq.csv",
        ("data.file.id_column=null", "data.file.target_column=BAD", "data.file.drop_columns=[]"),
    ),
    Command(
        "german",
        "german_credit.csv",
        ("data.file.id_column=null", "data.file.target_column=bad", "data.file.drop_columns=[class]"),
    ),
    Command(
        "australian",
        "australian_credit.csv",
        ("data.file.id_column=null", "data.file.target_column=class", "data.file.drop_columns=[]"),
    ),
)


def exp_run_args(command: Command, path: Path) -> list[str]:
    args = ["exp", "run", "-n", command.name, "-S", "data.source=file", "-S", f"data.file.path={path}"]
    for setting in command.settings:
        args += ["-S", setting]
    return args


def copy_repo(dest: Path) -> None:
    from bench_pipeline import copy_repo as plain_copy_repo

    plain_copy_repo(dest)


def timed_stages(args: list[str], cwd: Path) -> tuple[float, dict[str, float]]:
    from bench_pipeline import stage_timings

    return stage_timings(args, cwd, STAGE_ENV)


def score_raw_file(copy: Path, path: Path) -> dict[str, Any]:
    """`scoring score` on the raw file; its counts read back from the two output files."""
    import pyarrow.parquet as pq

    out, rejected = copy / "byo_scores.parquet", copy / "byo_rejected.parquet"
    scoring = Path(sys.executable).parent / "scoring"
    cmd = [str(scoring), "score", "--model", "models/pd_model", "--input", str(path), "--output", str(out)]
    cmd += ["--rejected", str(rejected)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=copy, env=STAGE_ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"scoring score failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    n_scored = pq.ParquetFile(out).metadata.num_rows
    n_rejected = pq.ParquetFile(rejected).metadata.num_rows
    flags = pq.read_table(out, columns=["input_flags"]).column("input_flags").to_pylist()
    with path.open("rb") as handle:
        n_input = sum(1 for _ in handle) - 1
    return {
        "n_input": n_input,
        "n_scored": n_scored,
        "n_rejected": n_rejected,
        "reconciles": n_scored + n_rejected == n_input,
        "n_flagged": sum(1 for f in flags if f),
        "seconds": round(seconds, 1),
    }


def peers(copy: Path) -> dict[str, float]:
    """Test AUC of the three peers, fitted on the pipeline's own train+valid rows and features."""
    import numpy as np
    import pandas as pd
    import xgboost as xgb
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from quality import fit_logistic, lr_frame
    from scoring.core.contract import DatasetSpec
    from scoring.core.io import read_parquet
    from scoring.features.transformer import ApplicationFeatures

    spec = DatasetSpec.from_json((copy / "data" / "validated" / "dataset.json").read_text())
    features = ApplicationFeatures.from_dict(json.loads((copy / "models" / "features.json").read_text()))
    split = copy / "data" / "split"
    fit = pd.concat([read_parquet(split / "train.parquet"), read_parquet(split / "valid.parquet")])
    test = read_parquet(split / "test.parquet")
    X_fit, X_test = features.transform(fit), features.transform(test)
    y_fit = fit[spec.target_column].to_numpy(dtype=np.float64)
    y_test = test[spec.target_column].to_numpy(dtype=np.float64)
    seed = 20261128
    logistic = fit_logistic(X_fit, y_fit, seed)
    booster = xgb.XGBClassifier(enable_categorical=True, n_jobs=1, random_state=seed).fit(X_fit, y_fit)
    hgb = HistGradientBoostingClassifier(random_state=seed).fit(X_fit, y_fit)
    return {
        "logistic": float(roc_auc_score(y_test, logistic.predict_proba(lr_frame(X_test))[:, 1])),
        "xgboost_default": float(roc_auc_score(y_test, booster.predict_proba(X_test)[:, 1])),
        "hgb_default": float(roc_auc_score(y_test, hgb.predict_proba(X_test)[:, 1])),
    }


def run_dataset(copy: Path, command: Command, data_dir: Path) -> dict[str, Any]:
    path = (data_dir / command.file).resolve()
    dvc = str(Path(sys.executable).parent / "dvc")
    wall, stages = timed_stages([dvc, *exp_run_args(command, path)], copy)
    metrics = json.loads((copy / "reports" / "metrics.json").read_text())
    calibration = json.loads((copy / "reports" / "calibration_report.json").read_text())
    champion = metrics["champion"]
    models = {name: round(m["test"]["auc"], 4) for name, m in metrics["models"].items() if "test" in m}
    split = json.loads((copy / "reports" / "split.json").read_text())
    return {
        "command": f".venv/bin/dvc {' '.join(exp_run_args(command, Path('../shared/data') / command.file))}",
        "pipeline_seconds": round(wall, 1),
        "stage_seconds": stages,
        "champion": champion,
        "test_auc": models,
        "champion_test_auc": models.get(champion),
        "peers_test_auc": {k: round(v, 4) for k, v in peers(copy).items()},
        "split": split,
        "switched_off": calibration.get("rule_scope", {}).get("notes", []),
        "review_html": (copy / "reports" / "review.html").is_file(),
        "exported_model": (copy / "models" / "pd_model" / "MLmodel").is_file(),
        "score_raw_file": score_raw_file(copy, path),
        # the evaluate stage's account of the splits: n_input = n_scored + n_rejected, flags
        "pipeline_scoring": {k: v for k, v in metrics["scoring"].items() if k != "rejected_examples"},
        "scorecard": scorecard_checks(copy),
    }


def scorecard_checks(copy: Path) -> dict[str, Any]:
    """The trained scorecard's characteristics, those against risk, what the sign rule removed
    and the failed checks (sign, points ordered with event rates, VIF), from the stage's files."""
    from scoring.models.scorecard import ScorecardModel
    from scoring.models.scorecard_selection import characteristic_checks

    path = copy / "models" / "candidates" / "scorecard" / "scorecard.json"
    if not path.is_file():
        return {"trained": False}
    model = ScorecardModel.from_dict(json.loads(path.read_text()))
    selection = json.loads((copy / "reports" / "scorecard" / "selection.json").read_text())
    checks = characteristic_checks(model, selection.get("vif"))
    return {
        "trained": True,
        "characteristics": len(model.features),
        "against_risk": model.against_risk(),
        "removed_by_sign_rule": [r.variable for r in model.sign_rule.removed],
        "failed_checks": {name: c["failures"] for name, c in checks.items() if c["failures"]},
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Bring-your-own datasets through the README's commands",
        "",
        f"{results['date']}, {results['machine']}; `python benchmarks/byo.py`. Test AUC of the "
        "uncalibrated champion on the pipeline's own test split; the peers are fitted in the same "
        "run on the same train+valid rows and scored on the same test rows.",
        "",
        "| dataset | pipeline s | tune s | train s | champion | test AUC | logistic | XGBClassifier() "
        "| HGB() | best peer | scored + rejected = input | flagged |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, r in results["datasets"].items():
        p, s = r["peers_test_auc"], r["score_raw_file"]
        best = max(p.values())
        lines.append(
            f"| {name} | {r['pipeline_seconds']} | {r['stage_seconds'].get('tune', '-')} | "
            f"{r['stage_seconds'].get('train', '-')} | {r['champion']} | {r['champion_test_auc']:.4f} | "
            f"{p['logistic']:.4f} | {p['xgboost_default']:.4f} | {p['hgb_default']:.4f} | "
            f"{r['champion_test_auc'] - best:+.4f} | {s['n_scored']:,} + {s['n_rejected']:,} = "
            f"{s['n_input']:,} {'(reconciled)' if s['reconciles'] else '(NOT reconciled)'} | "
            f"{s['n_flagged']:,} |"
        )
    lines += [
        "",
        "flagged: rows of the raw file scored with a value training did not show (`input_flags`: "
        "out of the training range, null where training had none), scored all the same.",
        "",
        "The evaluate stage's account of the splits (`reports/metrics.json` `scoring`):",
        "",
    ]
    for name, r in results["datasets"].items():
        a = r["pipeline_scoring"]
        flags = ", ".join(f"{k} {v}" for k, v in a["flags"].items()) or "none"
        lines.append(
            f"- {name}: {a['n_input']:,} = scored {a['n_scored']:,} + rejected {a['n_rejected']:,}; "
            f"flagged {a['n_flagged']:,} ({flags})"
        )
    lines += ["", "The trained scorecard (`models/candidates/scorecard/scorecard.json`) and its checks:", ""]
    for name, r in results["datasets"].items():
        c = r["scorecard"]
        if not c.get("trained"):
            lines.append(f"- {name}: no scorecard trained")
            continue
        lines.append(
            f"- {name}: {c['characteristics']} characteristics, {len(c['against_risk'])} against risk, "
            f"removed by the sign rule: {', '.join(c['removed_by_sign_rule']) or 'none'}; failed checks: "
            + ("; ".join(f"{k}: {', '.join(v)}" for k, v in c["failed_checks"].items()) or "none")
        )
    lines += ["", "Stage seconds per dataset:", ""]
    for name, r in results["datasets"].items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in r["stage_seconds"].items()))
    lines += ["", "Switched off for want of columns (identical for the four files):", ""]
    first = next(iter(results["datasets"].values()))
    lines += [f"- {note}" for note in first["switched_off"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    names = [c.name for c in COMMANDS]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", choices=names, default=names)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()

    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start",
        "datasets": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-byo-") as tmp:
        copy = Path(tmp)
        copy_repo(copy)
        for command in COMMANDS:
            if command.name not in args.datasets:
                continue
            print(f"{command.name}: running the README command ...", flush=True)
            results["datasets"][command.name] = run_dataset(copy, command, args.data_dir)
            print(json.dumps(results["datasets"][command.name], indent=2), flush=True)
    from scoring.core.figures import write_results

    write_results(RESULTS_DIR / "byo.json", results, markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
