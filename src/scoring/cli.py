"""The `scoring` command line: what users run by hand (the pipeline itself runs through DVC)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from scoring.config import SyntheticDataConfig
from scoring.runtime import USER_ERRORS, quiet_third_parties, setup_logging

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
    from scoring.io import atomic_path, write_parquet
    from scoring.synthetic import generate_portfolio

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


@app.command("make-examples")
def make_examples(
    out_dir: Annotated[Path, typer.Option(help="folder for the example CSV files")] = Path("data/examples"),
) -> None:
    """Write the README's example inputs: a broken file and one with a few bad rows."""
    from scoring.examples import write_examples

    for path in write_examples(out_dir):
        console.print(f"wrote {path}")


@app.command()
def score(
    model: Annotated[Path, typer.Option(help="exported model directory (models/pd_model)")],
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet file of raw applications")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Parquet file for the scores")],
) -> None:
    """Score raw applications with an exported model: application_id, pd, model_version."""
    import mlflow.pyfunc

    from scoring.io import read_table, write_parquet

    try:
        applications = read_table(input)
        loaded = mlflow.pyfunc.load_model(str(model))
    except USER_ERRORS as exc:
        raise _fail(exc) from None
    with _progress() as progress:
        task = progress.add_task("scoring", total=len(applications))
        scores = loaded.predict(applications)
        progress.update(task, completed=len(applications))
    write_parquet(output, scores)
    console.print(f"scored {len(scores):,} of {len(applications):,} applications into {output}")


if __name__ == "__main__":
    app()
