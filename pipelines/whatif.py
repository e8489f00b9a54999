"""DVC stage `whatif`: the test and out-of-time applications decided again under a changed policy,
limit or price (params whatif.scenario), against the current params; the pricing check and the
grade cut-off curve (scoring.decision.whatif; docs/whatif.md).

Both books come from the exported model's own scorer (the pipeline's model folder with the
params' policy and limits, then the scenario's). ``reports/whatif.json`` holds the overall
figures of both and the change, so `dvc exp run -S whatif.scenario.rate_shift=0.02` and
`dvc exp show` compare policies; the folder ``reports/whatif`` holds the figures by grade, the
pricing check and the cut-off curve (CSV and PNG).

A dataset without the loan's terms (loan_amount, annual_rate, term_months, repayment_method)
cannot be replayed: the stage then writes why, and the rest of the pipeline goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from typing import Any

import pandas as pd

from scoring.core.io import atomic_path, read_parquet, write_json
from scoring.decision.whatif import (
    WhatIfScenario,
    book_figures,
    book_rows,
    changes,
    cutoff_curve,
    pricing_check,
    scenario_settings,
    shifted_applications,
)
from scoring.serving.scorer import Scorer
from scoring.stages import Stage, run

logger = logging.getLogger(__name__)

TERMS = ("loan_amount", "annual_rate", "term_months", "repayment_method")


def main(stage: Stage) -> None:
    params, spec = stage.params, stage.spec
    config = params.whatif
    out_dir = stage.path("out_dir")
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    frames = [read_parquet(stage.path("split_dir") / f"{name}.parquet") for name in config.splits]
    applications = pd.concat(frames, ignore_index=True)
    missing = [c for c in TERMS if c not in applications.columns]
    if missing or applications.empty:
        why = (
            f"the dataset has no {', '.join(missing)}: the loans' terms are needed to book and price them"
            if missing
            else f"no applications in {config.splits}"
        )
        logger.warning("whatif: not run: %s", why)
        write_json(stage.path("metrics"), {"replayed": False, "why": why})
        write_json(out_dir / "detail.json", {"replayed": False, "why": why})
        return

    scorer = Scorer.from_model_dir(stage.path("model_dir"), params, spec)
    scenario = config.scenario
    policy, limits = scenario_settings(scenario, params.policy, params.limits)
    changed = dataclasses.replace(scorer, policy=policy, limits=limits)
    offered = shifted_applications(applications, scenario)
    booked, scoring = scorer.scorable_both(applications, offered, "whatif")
    applications, offered = (frame[booked].reset_index(drop=True) for frame in (applications, offered))
    outcome = pd.to_numeric(applications[spec.target_column], errors="coerce").to_numpy(dtype=float)
    rows_now = book_rows(applications, scorer.score(applications, with_reasons=False), params.limits, config)
    rows_then = book_rows(offered, changed.score(offered, with_reasons=False), limits, config)
    current, changed_book = book_figures(rows_now, outcome), book_figures(rows_then, outcome)

    # every grade approved: only the knock-outs decline, and each row has the limit it would get
    n_grades = scorer.scale.n_grades
    open_policy, _ = scenario_settings(
        WhatIfScenario(approve_max_grade=n_grades, refer_max_grade=n_grades), params.policy, params.limits
    )
    everyone = dataclasses.replace(scorer, policy=open_policy)
    curve = cutoff_curve(
        book_rows(applications, everyone.score(applications, with_reasons=False), params.limits, config),
        outcome,
        n_grades,
    )
    pricing = {
        "current": pricing_check(rows_now, params.limits, config),
        "scenario": pricing_check(rows_then, limits, config),
    }
    below = [p["grade"] for p in pricing["current"] if not p["covered"]]
    metrics: dict[str, Any] = {
        "replayed": True,
        "splits": list(config.splits),
        "scenario": scenario.model_dump(),
        "current": current["overall"],
        "changed": changed_book["overall"],
        "change": changes(current["overall"], changed_book["overall"]),
        "grades_priced_below_cost": below,
        "scoring": scoring,
    }
    write_json(stage.path("metrics"), metrics)
    write_json(
        out_dir / "detail.json",
        {
            **metrics,
            "current_by_grade": current["by_grade"],
            "changed_by_grade": changed_book["by_grade"],
            "pricing": pricing,
            "costs": {
                "lgd": params.limits.lgd,
                "funding_cost": params.limits.funding_cost,
                "operating_cost": config.operating_cost,
                "capital_charge": config.capital_charge,
            },
            "cutoff_curve": curve.to_dict(orient="records"),
        },
    )
    with atomic_path(out_dir / "cutoff_curve.csv") as tmp:
        curve.to_csv(tmp, index=False)
    _plot_curve(curve, params.policy.decisions.approve_max_grade, out_dir / "cutoff_curve.png")
    logger.info(
        "whatif: approval %.1f%% -> %.1f%%, profit %.0f -> %.0f; grades priced below cost: %s",
        100 * (current["overall"]["approval_rate"] or 0),
        100 * (changed_book["overall"]["approval_rate"] or 0),
        current["overall"]["expected_profit"],
        changed_book["overall"]["expected_profit"],
        below or "none",
    )


def _plot_curve(curve: pd.DataFrame, current_cut: int, path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(curve["approval_rate"], curve["bad_rate_approved"], marker="o")
    right.plot(curve["approval_rate"], curve["expected_profit"], marker="o", color="tab:green")
    for ax in (left, right):
        for row in curve.itertuples():
            y = row.bad_rate_approved if ax is left else row.expected_profit
            ax.annotate(f"G{row.approve_max_grade}", (row.approval_rate, y), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
        ax.set_xlabel("approval rate")
        now = curve[curve["approve_max_grade"] == current_cut]
        if len(now):
            ax.axvline(float(now["approval_rate"].iloc[0]), linestyle=":", color="grey")
    left.set(ylabel="bad rate of the approved", title="Cut-off grade: risk")
    right.set(ylabel="expected first-year profit", title="Cut-off grade: profit")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    run(__doc__, main, "model_dir", "split_dir", "dataset", "metrics", "out_dir")
