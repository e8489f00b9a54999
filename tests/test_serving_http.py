"""HTTP serving end to end: `mlflow models serve --env-manager local` on loopback, real requests.

The golden applications must come back exactly as the library and the loaded artifact score
them; bad payloads must get 4xx answers that name the field, the value and the expectation.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from scoring.core.contract import SYNTHETIC_SPEC, DatasetSpec
from scoring.export import export_model
from scoring.serving.http import dataframe_split, post_json, predictions_frame, start_server, stop_server
from scoring.serving.scorer import Scorer
from serving_support import RUN_ID, as_output_types, build_model_dir, repo_params

GOLDEN = Path(__file__).parent / "data" / "golden_applications.csv"
INFO = {"model_name": "test", "model_version": RUN_ID[:12], "mlflow_run_id": RUN_ID}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Scorer]]:
    root = tmp_path_factory.mktemp("http")
    model_dir, raw = build_model_dir(root / "models")
    export_model(model_dir, root / "pd_model", SYNTHETIC_SPEC, raw, INFO, repo_params())
    process, url = start_server(root / "pd_model")
    try:
        yield url, Scorer.from_model_dir(model_dir, repo_params(), SYNTHETIC_SPEC, INFO)
    finally:
        stop_server(process)
    assert process.poll() is not None


def test_golden_applications_over_http_equal_in_process_scores(served: tuple[str, Scorer]) -> None:
    url, scorer = served
    golden = pd.read_csv(GOLDEN)
    status, answer = post_json(url, dataframe_split(golden))
    assert status == 200, answer
    pd.testing.assert_frame_equal(
        as_output_types(predictions_frame(answer)), scorer.score(golden), check_exact=True
    )
    status, answer = post_json(url, dataframe_split(golden.head(1)))
    assert status == 200 and len(answer["predictions"]) == 1


def test_integral_floats_are_accepted_over_http(served: tuple[str, Scorer]) -> None:
    url, scorer = served
    golden = pd.read_csv(GOLDEN).head(5)
    body = dataframe_split(golden)
    age = body["dataframe_split"]["columns"].index("age")
    for row in body["dataframe_split"]["data"]:
        row[age] = float(row[age])  # 45.0, as a JSON encoder of a float column sends it
    status, answer = post_json(url, body)
    assert status == 200, answer
    pd.testing.assert_frame_equal(
        as_output_types(predictions_frame(answer)), scorer.score(golden), check_exact=True
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda f: f.drop(columns="monthly_income"), ["monthly_income", "required"]),
        (lambda f: f.assign(age=[17, 40, 41]), ["row 0: age: got 17, expected a whole number in 18..80"]),
        (
            lambda f: f.assign(age=["abc", 40, 41]),
            ["row 0: age: got 'abc', expected a whole number in 18..80"],
        ),
        (
            lambda f: f.assign(income_verified=[True, "yes", False], annual_rate=[0.1, 0.1, 7.0]),
            [
                "2 of 3 applications rejected",
                "row 1: income_verified: got 'yes', expected true or false",
                "row 2: annual_rate: got 7, expected a number in 0..1",
            ],
        ),
        (lambda f: f.assign(age=[45.5, 40, 41]), ["row 0: age: got 45.5, expected a whole number"]),
    ],
    ids=["missing_field", "impossible_value", "wrong_type", "two_rows_two_fields", "fractional_int"],
)
def test_bad_payloads_get_4xx_with_per_field_messages(
    served: tuple[str, Scorer], change: object, expected: list[str]
) -> None:
    url, _ = served
    frame = change(pd.read_csv(GOLDEN).head(3))  # type: ignore[operator]
    status, answer = post_json(url, dataframe_split(frame))
    assert 400 <= status < 500, (status, answer)
    for text in expected:
        assert text in answer["message"], answer["message"][-2000:]


def test_malformed_json_is_a_4xx(served: tuple[str, Scorer]) -> None:
    status, answer = post_json(served[0], "{not json")
    assert 400 <= status < 500 and "JSON" in answer["message"]


@pytest.mark.slow
def test_pipeline_library_artifact_and_http_agree_on_the_golden_applications(pipeline: Path) -> None:
    """Parity: the pipeline's scorer (what `evaluate` runs), the exported artifact and HTTP."""
    import mlflow.pyfunc

    from scoring.config import load_params
    from scoring.serving.scorer import model_info

    params = load_params(pipeline / "params.yaml")
    spec = DatasetSpec.from_json((pipeline / "data/validated/dataset.json").read_text())
    info = model_info(params)
    library = Scorer.from_model_dir(pipeline / "models", params, spec, info)
    golden = pd.read_csv(GOLDEN)
    expected = library.score(golden)
    # the explain stage always writes the reason coder, so the parity below covers the reasons too
    assert (pipeline / "models/reasons.json").is_file(), "the pipeline wrote no models/reasons.json"
    assert library.reasons is not None, "models/reasons.json is there but the scorer loaded no reason coder"
    assert (expected["reason_code_1"] != "").any(), expected["reason_code_1"].value_counts()

    model_path = pipeline / "models/pd_model"
    artifact = mlflow.pyfunc.load_model(str(model_path)).predict(golden)
    pd.testing.assert_frame_equal(artifact, expected, check_exact=True)

    process, url = start_server(model_path)
    try:
        status, answer = post_json(url, dataframe_split(golden))
    finally:
        stop_server(process)
    assert status == 200, answer
    pd.testing.assert_frame_equal(as_output_types(predictions_frame(answer)), expected, check_exact=True)
    assert isinstance(process, subprocess.Popen) and process.poll() is not None
