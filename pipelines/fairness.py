"""DVC stage `fairness`: fair-lending screening of the exported model's decisions on test and
out-of-time (params fairness; scoring.reporting.fairness), and the reason codes checked to name
only factors the model scores.

Per group variable of params (age band, marital status, region by default) and split: each
group's approval rate, its adverse impact ratio against the most favoured group with the
four-fifths threshold, and fairlearn's true- and false-positive rates and equalized-odds
difference. A variable whose column the dataset lacks is listed as not screened, and the
pipeline goes on. Written to ``reports/fairness.json``; the reviewer report shows it.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from scoring.core.io import read_parquet, write_json
from scoring.features.transformer import DERIVED_FEATURES
from scoring.reporting.fairness import fairness_report, reason_codes_check
from scoring.serving.bundle import REASONS_FILE, ModelBundle
from scoring.stages import Stage, run

logger = logging.getLogger(__name__)


def main(stage: Stage) -> None:
    params, spec = stage.params, stage.spec
    config = params.fairness
    predictions = read_parquet(stage.path("scores"), columns=["application_id", "split", "decision"])
    probe = read_parquet(stage.path("split_dir") / f"{config.splits[0]}.parquet")
    present = {name: g for name, g in config.groups.items() if g.column in probe.columns}
    absent = {name: g.column for name, g in config.groups.items() if name not in present}
    for name, column in absent.items():
        logger.warning("fairness: %s not screened: the dataset has no column %s", name, column)
    out: dict[str, Any] = {
        "air_threshold": config.air_threshold,
        "min_group_size": config.min_group_size,
        "not_screened": {name: f"no column {column}" for name, column in absent.items()},
        "splits": {},
    }
    if present:
        screened = config.model_copy(update={"groups": present})
        for name in config.splits:
            frame = read_parquet(stage.path("split_dir") / f"{name}.parquet")
            if frame.empty:
                continue
            decided = predictions[predictions["split"] == name].set_index("application_id")["decision"]
            ids = frame[spec.id_column].astype(str)
            missing = ~ids.isin(decided.index)
            if missing.any():
                raise ValueError(
                    f"fairness: {int(missing.sum())} {name} applications (first {ids[missing].iloc[0]!r}) "
                    "have no decision in the predictions; expected every row of the split scored"
                )
            outcome = pd.to_numeric(frame[spec.target_column], errors="coerce")
            out["splits"][name] = fairness_report(
                frame, decided.reindex(ids).to_numpy(), outcome.to_numpy(dtype=float), screened
            )
    protected = sorted({g.column for g in present.values()})
    bundle = ModelBundle(stage.path("model_dir"))
    if bundle.has(REASONS_FILE):
        coder = bundle.read(REASONS_FILE)
        groups = {str(g["name"]): list(g["features"]) for g in coder["groups"]}
        out["reason_codes"] = reason_codes_check(
            groups,
            groups,
            coder["features"],
            protected,
            derived_sources={f.name: f.sources for f in DERIVED_FEATURES},
        )
    flagged = [
        f"{split}: {f['variable']} {f['group']} (AIR {f['air']:.2f})"
        for split, report in out["splits"].items()
        for f in report["flagged"]
    ]
    out["flagged"] = flagged
    write_json(stage.path("out"), out)
    logger.info(
        "fairness: %d groups below the four-fifths threshold%s",
        len(flagged),
        ": " + "; ".join(flagged) if flagged else "",
    )


if __name__ == "__main__":
    run(__doc__, main, "model_dir", "split_dir", "dataset", "scores", "out")
