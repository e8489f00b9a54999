"""DVC stage `features`: fit the feature transformer on train; missing rates and suspected leaks."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from scoring.config import load_params
from scoring.core.contract import DatasetSpec
from scoring.core.io import read_parquet, write_json
from scoring.data.leakage import SuspectedLeakError, leakage_report
from scoring.features.transformer import ApplicationFeatures, feature_summary
from scoring.runtime import run_stage

logger = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--train", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--summary", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    spec = DatasetSpec.from_json(Path(args.dataset).read_text(encoding="utf-8"))
    train = read_parquet(args.train)
    transformer = ApplicationFeatures(
        exclude_columns=spec.non_feature_columns,
        categorical_columns=spec.categorical_columns,
        max_category_levels=params.features.max_category_levels,
        min_category_count=params.features.min_category_count,
    ).fit(train)
    matrix = transformer.transform(train)
    summary = feature_summary(transformer, matrix)
    for name, lacking in summary["derived_not_computed"].items():
        logger.warning("features: derived feature %s not computed: no column %s", name, ", ".join(lacking))
    # Before the transformer is written: with stop_on_suspected_leak, a leak stops here.
    summary["leakage"] = leakage_report(matrix, train[spec.target_column], params.validate_.leakage)
    write_json(args.summary, summary)
    write_json(args.out, transformer.to_dict())


if __name__ == "__main__":
    run_stage(main, user_errors=(SuspectedLeakError,))
