"""DVC stage `features`: fit the feature transformer on train; missing rates and suspected leaks.

Fitted on the fit sample of train (params ``sample_rows``: every row up to it; beyond, a seeded
sample by customer, filtered on the cluster with ``engine: dask``)."""

from __future__ import annotations

import logging

from scoring.core.io import write_json
from scoring.data.leakage import SuspectedLeakError, leakage_report
from scoring.features.transformer import ApplicationFeatures, feature_summary
from scoring.stages import Stage, run

logger = logging.getLogger(__name__)


def main(stage: Stage) -> None:
    params = stage.params
    spec = stage.spec
    with stage.engine_client():
        train = stage.read_sample(stage.path("train"))  # every row up to params sample_rows
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
    write_json(stage.path("summary"), summary)
    write_json(stage.path("out"), transformer.to_dict())


if __name__ == "__main__":
    run(__doc__, main, "train", "dataset", "out", "summary", user_errors=(SuspectedLeakError,))
