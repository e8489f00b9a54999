"""The `scoring` command line: what users run by hand (the pipeline itself runs through DVC)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from scoring.data.config import SyntheticDataConfig
from scoring.runtime import USER_ERRORS, quiet_third_parties, setup_logging

if TYPE_CHECKING:
    import pandas as pd

    from scoring.core.cluster import DaskConfig
    from scoring.serving.batch import BatchCounts

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Credit-scoring pipeline tools.")
console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=console,
    )


def _fail(exc: BaseException) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(code=1)


def _model_errors(*extra: type[BaseException]) -> tuple[type[BaseException], ...]:
    """What a command that loads an exported model reports as one message and exit 1: bad input,
    a model whose files or digest do not match, a malformed reference, a missing file."""
    from scoring.serving.artifact import ArtifactIntegrityError
    from scoring.serving.inputs import InputSchemaError
    from scoring.serving.integrity import ModelIntegrityError, ModelReferenceError

    return (
        *USER_ERRORS,
        ArtifactIntegrityError,
        ModelIntegrityError,
        ModelReferenceError,
        InputSchemaError,
        FileNotFoundError,
        *extra,
    )


@app.callback()
def _main(log_level: Annotated[str, typer.Option(help="logging level")] = "WARNING") -> None:
    quiet_third_parties()
    setup_logging(log_level)


@app.command()
def generate(
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV or Parquet file to write")],
    n: Annotated[int, typer.Option(help="number of applications")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 20261128,
    truth: Annotated[Path | None, typer.Option(help="also write the true default probabilities here")] = None,
) -> None:
    """Write a synthetic auto-loan portfolio (the embedded default data) to a file."""
    from scoring.core.io import atomic_path, write_parquet
    from scoring.data.synthetic import generate_portfolio

    with _progress() as progress:
        task = progress.add_task("generating applications", total=n)
        applications, true_pd = generate_portfolio(SyntheticDataConfig(n_applications=n), seed)
        progress.update(task, completed=n)
    if output.suffix.lower() == ".csv":
        with atomic_path(output) as tmp:
            applications.to_csv(tmp, index=False)
    else:
        write_parquet(output, applications)
    if truth is not None:
        write_parquet(truth, true_pd)
    console.print(f"wrote {len(applications):,} applications to {output}")


@app.command()
def summary(
    metrics: Annotated[Path, typer.Option(help="the evaluate stage's metrics file")] = Path(
        "reports/metrics.json"
    ),
) -> None:
    """Print the headline figures: AUC, KS and Brier by model and split, beside the truth's AUC."""
    import json

    try:
        data = json.loads(metrics.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(FileNotFoundError(f"{metrics}: not found; run the pipeline first (make run)")) from None
    models = data.get("models", {"model": {k: v for k, v in data.items() if isinstance(v, dict)}})
    in_sample = set(data.get("in_sample_splits", []))  # the models were fitted on these rows
    table = _summary_table(f"{metrics} (champion: {data.get('champion', 'n/a')})")
    for name, splits in models.items():
        present = [split for split in ("train", "valid", "test", "oot") if split in splits]
        for split in present:
            m = splits[split]
            label = f"{split}*" if split in in_sample else split
            table.add_row(
                name, label, f"{m['n']:,}", _fmt(m["default_rate"]), _fmt(m["auc"]),
                _fmt(m.get("true_pd_auc")), _fmt(m["ks"]), _fmt(m["brier"]),
                end_section=split == present[-1],
            )  # fmt: skip
    if in_sample:
        table.caption = "* in-sample: the exported models were fitted on these rows"
    Console().print(table)


def _fmt(value: object, digits: int = 4) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.{digits}f}"


def _summary_table(title: str) -> Table:
    """The summary's columns, laid out to fit 80 columns without cutting a name or a figure.

    Figures never wrap (squeezed, rich would cut them to "0.81…"), the two-word headings are
    split by hand so they don't widen their columns, and the frame has no outer edge and no
    doubled padding between columns: at 80 columns that leaves 22 characters for a model's
    name beside 100,000-row splits. A longer name folds onto a second line, never shortened.
    """
    from rich import box

    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("model", overflow="fold")
    table.add_column("split", no_wrap=True)
    for heading in ("rows", "default\nrate", "AUC", "true-PD\nAUC", "KS", "Brier"):
        table.add_column(heading, justify="right", no_wrap=True)
    return table


@app.command("make-examples")
def make_examples(
    out_dir: Annotated[Path, typer.Option(help="folder for the example CSV files")] = Path("data/examples"),
) -> None:
    """Write the README's example inputs: a broken file and one with a few bad rows."""
    from scoring.data.examples import write_examples

    for path in write_examples(out_dir):
        console.print(f"wrote {path}")


@app.command()
def verify(
    model: Annotated[
        str,
        typer.Option(
            help="exported model directory (models/pd_model) or registry URI (models:/auto_loan_pd@champion)"
        ),
    ],
    expect_digest: Annotated[
        str | None,
        typer.Option(help="the digest the model must have [default: $SCORING_MODEL_DIGEST]"),
    ] = None,
) -> None:
    """Check every file of an exported model against its manifest, and the manifest against the
    expected digest (a registry URI: its version's tag); print the digest. Exit 1 on any mismatch.

    Run it before serving a model directory: what it checks runs outside the model's own code.
    """
    import tempfile

    from scoring.serving.integrity import ModelIntegrityError, ModelReferenceError
    from scoring.serving.registry import resolve_model

    try:
        with tempfile.TemporaryDirectory(prefix="scoring-verify-") as download:
            verified = resolve_model(model, expect_digest, download_dir=download)
    except (ModelIntegrityError, ModelReferenceError, FileNotFoundError) as exc:
        raise _fail(exc) from None
    console.print(f"{model}: every file matches its manifest; model digest {verified.digest}")


@app.command()
def score(
    model: Annotated[
        str,
        typer.Option(
            help="exported model directory (models/pd_model) or registry URI (models:/auto_loan_pd@champion)"
        ),
    ],
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet file of raw applications")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Parquet file for the scores")],
    rejected: Annotated[
        Path | None,
        typer.Option(help="Parquet file for rejected rows and reasons [default: OUTPUT.rejected.parquet]"),
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="applications read and scored at a time")] = 100_000,
    reasons: Annotated[bool, typer.Option(help="reason codes (--no-reasons: blank)")] = True,
    expect_digest: Annotated[
        str | None,
        typer.Option(
            help="refuse a model whose digest (SHA-256 of its manifest.json) differs "
            "[default: $SCORING_MODEL_DIGEST; a registry URI is checked against its version's tag]"
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            help="pandas: chunks in this process; dask: partitions on a Dask cluster (OUTPUT "
            "and the rejected path become Parquet directories, one file per partition) "
            "[default: engine in --params]"
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="with --engine dask: a scheduler address (tcp://host:8786); empty: a LocalCluster "
            "here [default: dask.scheduler in --params]"
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="with a LocalCluster: its workers [default: dask.n_workers in --params, else one per core]",
        ),
    ] = None,
    params: Annotated[
        Path, typer.Option(help="params.yaml whose engine: and dask: are the defaults (when it exists)")
    ] = Path("params.yaml"),
) -> None:
    """Score raw applications with an exported model, chunk by chunk, into the full output.

    Writes application_id, pd, score, grade, decision, policy_reasons, suggested_limit,
    limit_constraint, reason codes and texts, model_version; rows that fail the input checks go to
    the rejected file with one message per field. Memory is bounded by --chunk-rows, not the file.
    """
    from scoring.serving.batch import check_input, count_rows, score_file
    from scoring.serving.registry import load_verified_scorer

    rejected = rejected or output.with_name(output.stem + ".rejected.parquet")
    score_errors = _model_errors()
    try:
        engine, dask_config = _engine_settings(params, engine, scheduler, workers, chunk_rows)
    except score_errors as exc:
        raise _fail(exc) from None
    if engine == "dask":
        try:
            check_input(input)
            counts, digest = _score_on_dask(
                model, input, output, rejected, expect_digest, dask_config, reasons
            )
        except score_errors as exc:
            raise _fail(exc) from None
        console.print(
            f"input {counts.n_input:,} = scored {counts.n_scored:,} + rejected {counts.n_rejected:,}; "
            f"{_flagged_text(counts)}"
            f"scores in {output}/, rejected rows in {rejected}/ (Parquet, one file per partition); "
            f"model digest {digest}"
        )
        return
    try:
        check_input(input)
        scorer, digest = load_verified_scorer(model, expect_digest)
        total = count_rows(input)
        with _progress() as progress:
            task = progress.add_task("scoring", total=total)
            counts = score_file(
                scorer,
                input,
                output,
                rejected,
                chunk_rows=chunk_rows,
                with_reasons=reasons,
                progress=lambda n: progress.advance(task, n),
            )
    except score_errors as exc:
        raise _fail(exc) from None
    console.print(
        f"input {counts.n_input:,} = scored {counts.n_scored:,} + rejected {counts.n_rejected:,}; "
        f"{_flagged_text(counts)}"
        f"scores in {output}, rejected rows in {rejected}; model digest {digest}"
    )


def _flagged_text(counts: BatchCounts) -> str:
    """The scored rows with a value training did not show, where there are any."""
    if not counts.n_flagged:
        return ""
    return f"{counts.n_flagged:,} scored rows flagged (input_flags: values outside what training saw); "


def _engine_settings(
    params: Path, engine: str | None, scheduler: str | None, workers: int | None, partition_rows: int
) -> tuple[str, DaskConfig]:
    """The engine and the cluster: the command's options over params.yaml's ``engine:`` and
    ``dask:`` (a params file that does not exist gives the defaults: pandas, a LocalCluster)."""
    from scoring.config import Params, load_params

    settings = load_params(params) if params.is_file() else Params()
    chosen = engine or settings.engine
    if chosen not in ("pandas", "dask"):
        from scoring.core.settings import ConfigError

        raise ConfigError(f"--engine {chosen!r}: expected pandas or dask")
    updates: dict[str, object] = {"partition_rows": max(partition_rows, 1_000)}
    if scheduler is not None:
        updates["scheduler"] = scheduler
    if workers is not None:
        updates["n_workers"] = workers
    return chosen, settings.dask.model_copy(update=updates)


def _score_on_dask(
    model: str,
    input: Path,
    output: Path,
    rejected: Path,
    expect_digest: str | None,
    config: DaskConfig,
    reasons: bool,
) -> tuple[BatchCounts, str]:
    """``scoring score --engine dask``: the model verified here, then loaded and verified again by
    each worker from the same files (:mod:`scoring.serving.batch_dask`)."""
    import tempfile

    from scoring.core.cluster import dask_client
    from scoring.serving.artifact import files_dir, load_scorer
    from scoring.serving.batch_dask import score_file_dask
    from scoring.serving.registry import resolve_model

    with tempfile.TemporaryDirectory(prefix="scoring-model-") as download:
        verified = resolve_model(model, expect_digest, download_dir=download)
        scorer = load_scorer(files_dir(verified.path))
        with console.status("scoring on dask"), dask_client(config) as client:
            counts = score_file_dask(
                client, verified.path, verified.digest, scorer, input, output, rejected,
                config.partition_rows, reasons,
            )  # fmt: skip
    return counts, verified.digest


@app.command()
def assess(
    model: Annotated[
        str,
        typer.Option(
            help="exported model directory (models/pd_model) or registry URI (models:/auto_loan_pd@champion)"
        ),
    ],
    application: Annotated[
        Path, typer.Option(help="the application: a JSON object (or a list), or a CSV / Parquet file")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="the page; with several applicants, one page each: OUTPUT's stem + _ID"
        ),
    ],
    id: Annotated[
        list[str] | None, typer.Option("--id", help="the applications to assess (repeatable) [default: all]")
    ] = None,
    lang: Annotated[str, typer.Option(help="labels: en or zh")] = "en",
    expect_digest: Annotated[
        str | None,
        typer.Option(help="refuse a model whose digest differs [default: $SCORING_MODEL_DIGEST]"),
    ] = None,
) -> None:
    """The credit assessment of applicants: one self-contained HTML page each, with the exported
    model's PD, score, grade, decision, reasons and limit, and the repayment schedules."""
    from scoring.core.io import write_text
    from scoring.reporting.assessment import LANGUAGES, assessment_pages, read_applications
    from scoring.serving.inputs import InputRejected
    from scoring.serving.registry import load_verified_scorer

    if lang not in LANGUAGES:
        raise _fail(ValueError(f"--lang {lang!r}: expected one of {list(LANGUAGES)}"))
    try:
        scorer, digest = load_verified_scorer(model, expect_digest)
        pages = assessment_pages(scorer, read_applications(application), digest, lang, id)
    except _model_errors(InputRejected) as exc:
        raise _fail(exc) from None
    if len(pages) == 1:
        paths = {next(iter(pages)): output}
    else:
        paths = {key: output.with_name(f"{output.stem}_{key}{output.suffix or '.html'}") for key in pages}
    for key, page in pages.items():
        write_text(paths[key], page)
    console.print(
        f"{len(pages)} assessment page(s): {', '.join(str(p) for p in paths.values())}; model digest {digest}"
    )


@app.command()
def monitor(
    model: Annotated[
        str,
        typer.Option(help="exported model directory or registry URI (models:/auto_loan_pd@champion)"),
    ],
    batch: Annotated[
        Path,
        typer.Option(
            help="CSV or Parquet file of applications: raw (scored here) or with the scorer's pd, "
            "score, grade and decision beside the inputs"
        ),
    ],
    performance: Annotated[
        Path | None, typer.Option(help="the loans' monthly performance history (CSV or Parquet)")
    ] = None,
    output_dir: Annotated[
        Path, typer.Option(help="folder for the tables, alerts.json and index.html")
    ] = Path("reports/monitoring-cli"),
    params: Annotated[Path, typer.Option(help="params.yaml with the monitor thresholds")] = Path(
        "params.yaml"
    ),
    mlflow: Annotated[
        bool, typer.Option(help="log the alerts to an MLflow run (--no-mlflow: files only)")
    ] = True,
    expect_digest: Annotated[
        str | None, typer.Option(help="refuse a model whose digest differs [default: $SCORING_MODEL_DIGEST]")
    ] = None,
) -> None:
    """Monitor new applications (and their loans' performance) against the model's reference profile.

    Prints each rule's traffic light and the first month it fired; writes the tables, alerts.json
    and the monitoring page. Exit status: 0 when no rule is red, 3 when any is (a scheduler can act
    on it), 1 on bad input.
    """
    from scoring.config import load_params
    from scoring.core.io import read_table
    from scoring.data.history_gate import HistoryInputError
    from scoring.monitor_files import (
        RED_EXIT_CODE,
        MonitoringInputError,
        log_to_mlflow,
        monitor_model,
        write_monitoring,
    )

    errors = _model_errors(HistoryInputError, MonitoringInputError)
    try:
        settings = load_params(params)
        frame = read_table(batch)
        history = read_table(performance) if performance is not None else None
        with console.status("monitoring"):
            monitored = monitor_model(model, frame, settings, history, expect_digest)
            paths = write_monitoring(monitored, output_dir, settings, model_label=str(model))
            if mlflow:
                log_to_mlflow(monitored, paths, settings.export.experiment_name, run_name="monitor-cli")
    except errors as exc:
        raise _fail(exc) from None
    alerts = monitored.result.alerts
    table = Table(title=f"monitoring: overall {alerts['overall']}")
    for column in ("rule", "light", "first fired", "first red", "months red"):
        table.add_column(column)
    for rule, entry in alerts["rules"].items():
        table.add_row(
            rule,
            entry["light"],
            str(entry["first_fired"] or "-"),
            str(entry["first_red"] or "-"),
            str(entry["months_red"]),
        )
    console.print(table)
    counts = monitored.counts
    console.print(
        f"batch {counts['batch_rows']:,} = scored {counts['batch_scored']:,} "
        f"+ rejected {counts['batch_rejected']:,}; page {paths['page']}; alerts {paths['alerts']}"
    )
    if alerts["retrain"]["recommended"]:
        because = "; ".join(alerts["retrain"]["because"])
        console.print(f"retraining recommended since {alerts['retrain']['since']}: {because}")
    if alerts["overall"] == "red":
        raise typer.Exit(RED_EXIT_CODE)


@app.command()
def collect(
    history: Annotated[Path, typer.Option(help="the loans' monthly performance history (CSV or Parquet)")],
    month: Annotated[str, typer.Option(help="the month to queue, YYYY-MM")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Parquet file for the ranked queue")],
    applications: Annotated[
        Path, typer.Option(help="the loans' applications (CSV or Parquet): terms, car, income")
    ] = Path("data/validated/applications.parquet"),
    scores: Annotated[
        Path | None,
        typer.Option(
            help="the applications' PD and score (application_id, pd, score), e.g. data/scores/"
            "predictions.parquet [default: score the applications with --pd-model]"
        ),
    ] = None,
    model: Annotated[
        str, typer.Option(help="the behaviour score: exported model directory or registry URI")
    ] = "models:/auto_loan_behaviour@champion",
    pd_model: Annotated[
        str, typer.Option(help="the application PD model, used when --scores is not given")
    ] = "models:/auto_loan_pd@champion",
    accounts: Annotated[
        Path | None,
        typer.Option(help="CSV or Parquet file with a loan_id column: queue only these accounts"),
    ] = None,
    held: Annotated[
        Path | None,
        typer.Option(
            help="Parquet file for the month's accounts not queued, with outcome and reasons "
            "[default: OUTPUT.held.parquet]"
        ),
    ] = None,
    params: Annotated[
        Path | None,
        typer.Option(help="params.yaml whose collections: section replaces the model's strategy and actions"),
    ] = None,
    expect_digest: Annotated[
        str | None, typer.Option(help="refuse a behaviour model whose digest differs")
    ] = None,
) -> None:
    """Write one month's collections queue: the month's delinquent accounts ranked by expected loss
    avoided per unit of an action's cost, each with its action, capacity, PD, reasons and rank reason.

    The history passes its gate first; every account of the month ends up queued, not delinquent,
    past the queue (M4+, written off, closed), quarantined (with the gate's reason codes), rejected
    (the score's checks) or, for --accounts, not in the history; the counts reconcile. Exit 1 on
    bad input with one message.
    """
    from scoring.collections.config import CollectionsConfig
    from scoring.collections.month import OUTCOMES, QueueInputError, queue_for_month
    from scoring.collections.scorer import BehaviourInputError, load_verified_behaviour
    from scoring.core.io import read_table, write_parquet
    from scoring.data.history_gate import HistoryInputError

    held = held or output.with_name(output.stem + ".held.parquet")
    errors = _model_errors(HistoryInputError, QueueInputError, BehaviourInputError)
    try:
        with console.status("reading"):
            frame = read_table(history)
            apps = read_table(applications)
            listed = None
            if accounts is not None:
                account_list = read_table(accounts)
                if "loan_id" not in account_list.columns:
                    raise QueueInputError(
                        f"--accounts {accounts}: no loan_id column (found {list(account_list.columns)[:10]})",
                        "accounts_without_loan_id",
                    )
                listed = account_list["loan_id"].dropna().astype(str)
        scorer, digest = load_verified_behaviour(model, expect_digest)
        config = None
        if params is not None:
            from scoring.config import load_params

            config = load_params(params).collections
        app_scores, passed_ids = _application_scores(apps, scores, pd_model, scorer.input_columns)
        with console.status("queueing"):
            result = queue_for_month(
                frame,
                apps,
                month,
                scorer,
                app_scores,
                config or CollectionsConfig.model_validate(scorer.settings),
                accounts=listed,
                passed_application_ids=passed_ids,
            )
        write_parquet(output, result.queue)
        write_parquet(held, result.held)
    except errors as exc:
        raise _fail(exc) from None
    counts = result.counts
    table = Table(title=f"collections queue {counts['month']}")
    for column in ("action", "accounts", "within capacity", "expected loss"):
        table.add_column(column, justify="right" if column != "action" else "left")
    for action, group in result.queue.groupby("action", sort=True):
        table.add_row(
            str(action), f"{len(group):,}", f"{int(group['within_capacity'].sum()):,}",
            f"{group['expected_loss'].sum():,.0f}",
        )  # fmt: skip
    console.print(table)
    parts = " + ".join(f"{o} {counts[o]:,}" for o in OUTCOMES)
    console.print(
        f"accounts {counts['accounts']:,} = {parts}; queue in {output}, the rest in {held}; "
        f"behaviour model digest {digest}"
    )


bins_app = typer.Typer(
    no_args_is_help=True,
    help="The scorecard's bins: show a variable's bin table, or suggest the optimiser's bins as an override.",
)
app.add_typer(bins_app, name="bins")

_SELECTION = Path("reports/scorecard/selection.json")
# a bad entry, variable or file (BinOverrideError and ScorecardError are ValueErrors)
_BINS_ERRORS: tuple[type[BaseException], ...] = (*USER_ERRORS, ValueError, KeyError, OSError)


def _selection(path: Path) -> dict[str, object]:
    from scoring.core.io import read_json

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no selection evidence; run the train stage first (dvc repro train)")
    evidence = read_json(path)
    if not evidence.get("computed"):
        raise ValueError(f"{path}: the selection evidence was not computed ({evidence.get('why')})")
    return dict(evidence)


@bins_app.command("show")
def bins_show(
    variable: Annotated[str, typer.Option(help="a scorecard candidate variable (a feature matrix column)")],
    model_dir: Annotated[Path, typer.Option(help="the train stage's model folder")] = Path("models"),
    selection: Annotated[Path, typer.Option(help="the train stage's selection evidence")] = _SELECTION,
) -> None:
    """The bin table of one variable: count, event rate, WoE, IV and points of each bin (the
    scorecard's, or the optimiser's with the reason it was dropped when it is not in the card)."""
    from scoring.models.scorecard_selection import variable_bins

    try:
        from scoring.core.io import read_json
        from scoring.models.scorecard import SCORECARD_FILE, ScorecardModel
        from scoring.serving.bundle import ModelBundle

        folder = ModelBundle(model_dir).candidate_dir("scorecard")
        scorecard = ScorecardModel.from_dict(read_json(folder / SCORECARD_FILE))
        shown = variable_bins(scorecard, _selection(selection), variable)
    except _BINS_ERRORS as exc:
        raise _fail(exc) from None
    table = Table(title=shown.title)
    for column in shown.table.columns:
        table.add_column(column, justify="left" if column == "bin" else "right")
    for row in shown.table.itertuples(index=False):
        table.add_row(*(_cell(value) for value in row))
    Console().print(table)
    for line in shown.notes:
        console.print(line)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:,.4f}"  # NaN: an empty bin has no rate
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@bins_app.command("suggest")
def bins_suggest(
    variable: Annotated[str, typer.Option(help="a scorecard candidate variable (a feature matrix column)")],
    file: Annotated[Path, typer.Option(help="the overrides file (train.scorecard.bins_file)")] = Path(
        "scorecard_bins.yaml"
    ),
    source: Annotated[
        str | None, typer.Option(help="its section: synthetic or file [default: data.source of params.yaml]")
    ] = None,
    selection: Annotated[Path, typer.Option(help="the train stage's selection evidence")] = _SELECTION,
    force: Annotated[bool, typer.Option(help="replace an entry the variable already has")] = False,
) -> None:
    """Write the optimiser's bins of one variable into the overrides file, to edit from there."""
    import datetime

    import yaml

    from scoring.models.scorecard_bins import suggested_entry, write_entry

    try:
        if source is None:
            params = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8")) or {}
            source = str((params.get("data") or {}).get("source", "synthetic"))
        evidence = _selection(selection)
        reason = (
            f"the optimiser's bins (scoring bins suggest, {datetime.date.today().isoformat()}): "
            "edit them and say why"
        )
        optimiser = evidence.get("optimiser_bins")
        assert isinstance(optimiser, dict)
        entry = suggested_entry(optimiser, variable, reason)
        write_entry(file, source, variable, entry, force)
    except _BINS_ERRORS as exc:
        raise _fail(exc) from None
    bins = entry.get("splits", entry.get("groups"))
    console.print(
        f"{file}: {source}.{variable} = {bins}; edit the bins and the reason, then `dvc repro` retrains"
    )


def _application_scores(
    applications: pd.DataFrame, scores: Path | None, pd_model: str, needed: list[str]
) -> tuple[pd.DataFrame | None, list[str] | None]:
    """(application_id, pd, score) for the behaviour score's application features, and the
    applications accepted (None: all). From --scores when given, else the PD model scores the
    applications (those it rejects are not accepted, so their loans are quarantined)."""
    from scoring.core.io import read_table
    from scoring.serving.registry import load_verified_scorer

    if not {"application_pd", "application_score"} & set(needed):
        return None, None
    if scores is not None:
        table = read_table(scores)
        missing = [c for c in ("application_id", "pd", "score") if c not in table.columns]
        if missing:
            raise ValueError(
                f"--scores {scores}: missing columns {missing}; expected application_id, pd, score"
            )
        return table[["application_id", "pd", "score"]], None
    scorer, _ = load_verified_scorer(pd_model)
    with console.status("scoring the applications"):
        scored, _rejected = scorer.score_batch(applications, with_reasons=False)
    return scored[["application_id", "pd", "score"]], scored["application_id"].astype(str).tolist()


figures_app = typer.Typer(
    no_args_is_help=True,
    help="Figures quoted in README and docs, each bound to its results file and key (docs/benchmarks.md).",
)
app.add_typer(figures_app, name="figures")


@figures_app.command("check")
def figures_check(
    root: Annotated[Path, typer.Option(help="the repository")] = Path(),
) -> None:
    """List every quoted figure that differs from its source as rounded on the page, every missing
    source or key, every results file made from a dirty tree, and every figure without a marker.
    Exit 1 when there is any."""
    from scoring.core.figures import check_pages

    problems = check_pages(root)
    for problem in problems:
        typer.echo(str(problem))
    typer.echo(f"{len(problems)} problems" if problems else "every quoted figure matches its source")
    if problems:
        raise typer.Exit(code=1)


@figures_app.command("update")
def figures_update(
    root: Annotated[Path, typer.Option(help="the repository")] = Path(),
) -> None:
    """Rewrite every bound figure of README and docs from its results file, at the page's precision
    (after `make figures` regenerated them); then check."""
    from scoring.core.figures import pages, update_page

    for page in pages(root):
        changed = update_page(page, root)
        if changed:
            typer.echo(f"{page}: {changed} figures rewritten")
    figures_check(root)


if __name__ == "__main__":
    app()
