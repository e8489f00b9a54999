"""Figures quoted in README and docs, bound to the results files that hold them.

A page declares its sources once, in an HTML comment that no renderer shows::

    <!--@sources q=benchmarks/results/quality.json r=benchmarks/results/default_run.json-->

and follows every figure it quotes with a marker naming the source and the key::

    German 0.7880<!--@q:datasets/german/champion/auc_mean--> ...
    approval 75.5%<!--@r:whatif/baseline/approval_rate %-->

The key is a ``/``-separated path into the JSON or YAML file (list items by index). What
follows it, after a space, turns the stored value into the page's unit: ``%`` (times 100), ``k`` and ``M``
(thousands, millions), ``MiB`` and ``GiB`` (from bytes), ``neg``, ``abs``, ``/N`` and ``*N``
(``/60``: seconds as minutes) and ``min`` (seconds written as ``3 min 25 s``). The figure is the
number just before the marker, rounded as the page rounds it: ``0.8787`` checks the value to
four decimals, ``75.5%`` to one. A text value (a month, a rule name) must end the text before
its marker.

A page with a ``@sources`` line is bound: every figure-like token on it (a number with decimals,
a percentage, thousands separators or a trailing ``x``) outside code must carry a marker, or the
marker ``<!--@-->`` that says it is not a measured figure (a goal, a parameter, an example).

:func:`check_page` lists what is wrong with a page; :func:`update_page` rewrites every bound
figure from its source at the page's precision (after the results files were regenerated).
:func:`provenance` is what every results file records about the run that made it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The paths a results run writes to: their changes do not make the tree it ran on dirty.
RESULTS_DIR = "benchmarks/results"

SOURCES = re.compile(r"<!--@sources\s+(?P<body>[^>]*?)\s*-->")
# Transforms follow the key after spaces, never "|": a pipe would split a Markdown table's cell.
MARKER = re.compile(
    r"<!--@(?:(?P<alias>\w+):(?P<key>[^\s|]+?)(?P<transforms>(?:[ \t]+[\w%*/.]+)*))?[ \t]*-->"
)
# A number as pages write it: optional sign, thousands separators, decimals.
NUMBER = r"(?P<sign>[-+\u2212]?)(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
# ... and as a token of its own: after a space or punctuation, not inside "2022-07" or "v1.2".
NUMBER_BEFORE = re.compile(r"(?:(?<=[\s(\[*|/~=:,;])|^)" + NUMBER + r"(?P<tail>[^\d<>|\n]{0,8})$")
MINUTES_BEFORE = re.compile(r"(?P<min>\d+) min (?P<sec>\d+) s\W{0,3}$")
# What a reader takes for a measured figure: decimals, a percentage, thousands, a ratio.
FIGURE_LIKE = re.compile(
    r"(?<![\w.\-/:#=])[-+\u2212]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?%?|\d+\.\d+(?:%|x)?|\d+(?:%|x)(?!\w)"
    r"|\d+(?= (?:s|ms|min|MiB|GiB)\b))"
)
CODE = re.compile(r"```.*?```|`[^`]+`", re.S)  # inline code may run over a line break
LINK_TARGET = re.compile(r"\]\([^)]*\)|!\[[^\]]*\]\([^)]*\)")


class FigureError(ValueError):
    """A figure, marker or source that cannot be checked as written."""


@dataclass(frozen=True)
class Problem:
    page: str
    line: int
    figure: str
    source: str
    message: str

    def __str__(self) -> str:
        where = f" (source {self.source})" if self.source else ""
        return f"{self.page}:{self.line}: {self.figure!r}{where}: {self.message}"


@dataclass(frozen=True)
class Binding:
    """One quoted figure: where it is, what the page shows, and where its value lives."""

    line: int
    start: int  # offset of the figure's text in the page
    end: int  # offset just after it
    shown: str
    before: str  # the page's text up to the marker (a text value must end it)
    marker: int  # offset of the marker
    alias: str
    key: str
    transforms: tuple[str, ...]


# --------------------------------------------------------------------------- provenance


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def dirty_paths(root: str | Path = ".") -> list[str]:
    """Tracked files changed and untracked files added, outside the results folder."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = [line[3:].split(" -> ")[-1].strip('"') for line in status.splitlines() if line.strip()]
    return sorted(p for p in paths if not p.startswith(RESULTS_DIR + "/"))


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "system": platform.platform(),
        "python": platform.python_version(),
    }


def provenance(root: str | Path = ".", command: str | None = None) -> dict[str, Any]:
    """The run that makes a results file: commit, whether the code was clean, the params'
    digest, the machine, the date, the load and the command line."""
    root = Path(root)
    params = root / "params.yaml"
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = dirty_paths(root)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise FigureError(f"provenance: expected a git checkout at {root}, got {exc}") from exc
    return {
        "commit": commit,
        "tree_clean": not dirty,
        "dirty_paths": dirty[:50],
        "params_sha256": hashlib.sha256(params.read_bytes()).hexdigest() if params.exists() else None,
        "machine": _machine(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "command": command if command is not None else shlex.join(["python", *sys.argv]),
    }


def provenance_line(record: Mapping[str, Any]) -> str:
    """One Markdown line for a results page: what made the figures above it."""
    state = "clean tree" if record["tree_clean"] else "DIRTY tree: " + ", ".join(record["dirty_paths"][:5])
    machine = record["machine"]
    return (
        f"_Made by `{record['command']}` at commit {record['commit'][:12]} ({state}), "
        f"{record['date']}, on {machine['cores']} cores ({machine['cpu']}), load average "
        f"{', '.join(str(x) for x in record['load_average'])} at the end; params.yaml "
        f"{str(record['params_sha256'])[:12]}._"
    )


def repository_root(start: str | Path) -> Path:
    """The git work tree holding ``start`` (a results file or a script)."""
    here = Path(start).resolve()
    folder = here if here.is_dir() else here.parent
    try:
        return Path(_git(folder, "rev-parse", "--show-toplevel"))
    except (OSError, subprocess.CalledProcessError) as exc:
        raise FigureError(f"expected {start} inside a git checkout, got {exc}") from exc


def write_results(
    path: str | Path, document: Mapping[str, Any], markdown: str | None = None
) -> dict[str, Any]:
    """Write a results file with its provenance (and the Markdown page beside it, ending with
    the provenance line); returns the provenance."""
    from scoring.core.io import write_text

    path = Path(path)
    try:
        root = repository_root(path)
    except FigureError:  # written outside the checkout (--out /tmp/...): the checkout that ran
        root = repository_root(Path.cwd())
    record = provenance(root)
    stamped = {**document, "provenance": record}
    write_text(path, json.dumps(stamped, indent=2, default=float) + "\n")
    if markdown is not None:
        write_text(path.with_suffix(".md"), markdown.rstrip("\n") + "\n\n" + provenance_line(record) + "\n")
    return record


# --------------------------------------------------------------------------- reading sources


def read_source(path: Path) -> Any:
    if not path.exists():
        raise FigureError(f"source {path.name} is missing: expected a results file the code regenerates")
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)


def lookup(document: Any, key: str) -> Any:
    value = document
    for part in key.split("/"):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            here = sorted(value)[:12] if isinstance(value, Mapping) else type(value).__name__
            raise FigureError(f"key {key!r}: no {part!r} (there: {here})")
    return value


def transform(value: Any, transforms: tuple[str, ...]) -> Any:
    for name in transforms:
        if name == "min":
            continue  # a way of writing seconds, applied when comparing
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise FigureError(f"transform {name}: expected a number, got {value!r}")
        scale = {"%": 100.0, "k": 1e-3, "M": 1e-6, "MiB": 2.0**-20, "GiB": 2.0**-30, "neg": -1.0}
        if name in scale:
            value = value * scale[name]
        elif re.fullmatch(r"[*/]\d+(?:\.\d+)?", name):  # /60: seconds to minutes, /1024: MiB to GiB
            value = value * float(name[1:]) if name[0] == "*" else value / float(name[1:])
        elif name == "abs":
            value = abs(value)
        else:
            raise FigureError(f"transform {name}: expected one of %, k, M, MiB, GiB, neg, abs, min, /N, *N")
    return value


# --------------------------------------------------------------------------- reading pages


def declared_sources(text: str) -> dict[str, str] | None:
    """The page's ``@sources`` aliases, or None for a page not bound yet."""
    found = SOURCES.findall(_blank(text, CODE))  # a declaration quoted in code is an example
    if not found:
        return None
    aliases: dict[str, str] = {}
    for body in found:
        for item in body.split():
            alias, sep, path = item.partition("=")
            if not sep or not alias.isidentifier() or not path:
                raise FigureError(f"@sources: expected alias=path items, got {item!r}")
            aliases[alias] = path
    return aliases


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def bindings(text: str) -> Iterator[Binding]:
    for match in MARKER.finditer(_blank(text, CODE)):  # markers quoted in code are examples
        if match["alias"] is None:
            continue
        before = text[max(0, match.start() - 60) : match.start()]
        transforms = tuple((match["transforms"] or "").split())
        pattern = MINUTES_BEFORE if "min" in transforms else NUMBER_BEFORE
        found = pattern.search(before)
        if found is None:  # not a number: checked as a text value, shown as its last word
            word = re.search(r"(\S+?)[*`)'\"]*$", before)
            shown = word.group(1) if word else ""
            start = match.start() - len(before) + (word.start(1) if word else len(before))
        else:
            tail = len(found.group("tail")) if "tail" in found.groupdict() else 0
            shown = found.group(0)[: len(found.group(0)) - tail]
            start = match.start() - len(before) + found.start()
        yield Binding(
            line=_line_of(text, match.start()),
            start=start,
            end=start + len(shown),
            shown=shown,
            before=before,
            marker=match.start(),
            alias=match["alias"],
            key=match["key"],
            transforms=transforms,
        )


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    """The text with the pattern's matches blanked out, offsets (and line numbers) kept."""
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def unbound_figures(text: str, covered: Sequence[tuple[int, int]] = ()) -> list[tuple[int, str]]:
    """Figure-like tokens outside code, link targets and ``covered`` spans (bound text values)
    that no marker follows."""
    visible = _blank(_blank(text, CODE), LINK_TARGET)
    out = []
    for match in FIGURE_LIKE.finditer(visible):
        if any(start <= match.start() < end for start, end in covered):
            continue
        rest = text[match.end() : match.end() + 20]
        # a marker may follow a unit ("188 s<!--@..-->", "3.9x**<!--@..-->"), and must be one
        unit = re.match(r"[^\d<>|\n]{0,8}(?=<!--@)|\s*min \d+ s\W{0,3}(?=<!--@)", rest)
        if unit and MARKER.match(text, match.end() + unit.end()):
            continue
        out.append((_line_of(text, match.start()), match.group(0)))
    return out


# --------------------------------------------------------------------------- checking


def render(value: Any, shown: str, transforms: tuple[str, ...]) -> str:
    """The value written as the page writes ``shown``: same decimals, separators and sign."""
    if isinstance(value, (str, bool)):
        return str(value)
    if not isinstance(value, int | float):
        raise FigureError(f"expected a number or a text, got {type(value).__name__}")
    if "min" in transforms:
        seconds = round(float(value))
        return f"{seconds // 60} min {seconds % 60} s"
    found = re.fullmatch(NUMBER, shown)
    if found is None:
        raise FigureError(f"expected a number before the marker, got {shown!r}")
    decimals = len(found["num"].partition(".")[2])
    grouped = "," in found["num"]
    number = f"{abs(value):{',' if grouped else ''}.{decimals}f}"
    negative = float(number.replace(",", "")) != 0 and value < 0
    sign = ("−" if found["sign"] == "−" else "-") if negative else "+" if found["sign"] == "+" else ""
    return sign + number


def check_page(path: Path, root: Path) -> list[Problem]:
    """What is wrong with one page: figures that differ from their source as rounded on the page,
    missing sources or keys, and figure-like tokens without a marker."""
    text = path.read_text(encoding="utf-8")
    name = os.fspath(path.relative_to(root)) if path.is_absolute() else os.fspath(path)
    aliases = declared_sources(text)
    if aliases is None:
        return []
    problems: list[Problem] = []
    documents: dict[str, Any] = {}
    covered: list[tuple[int, int]] = []
    for binding in bindings(text):
        source = aliases.get(binding.alias, "")
        where = f"{source}:{binding.key}" if source else binding.alias
        try:
            if not source:
                raise FigureError(
                    f"alias {binding.alias!r} is not in the page's @sources ({sorted(aliases)})"
                )
            if source not in documents:
                documents[source] = read_source(root / source)
            value = transform(lookup(documents[source], binding.key), binding.transforms)
            if isinstance(value, str):  # a month, a rule: the text before the marker ends with it
                kept = binding.before.rstrip(" *`)'\"")
                covered.append(
                    (binding.marker - (len(binding.before) - len(kept)) - len(value), binding.marker)
                )
                if not kept.endswith(value):
                    tail = binding.before.rstrip()[-len(value) - 8 :]
                    problems.append(Problem(name, binding.line, tail, where, f"the source says {value!r}"))
                continue
            expected = render(value, binding.shown, binding.transforms)
        except FigureError as exc:
            problems.append(Problem(name, binding.line, binding.shown, where, str(exc)))
            continue
        if expected != binding.shown:
            problems.append(
                Problem(name, binding.line, binding.shown, where, f"the source says {expected!r}")
            )
    for line, token in unbound_figures(text, covered):
        problems.append(Problem(name, line, token, "", "no marker: bind it to a source or mark it <!--@-->"))
    return problems


def sources_of(path: Path) -> list[str]:
    aliases = declared_sources(path.read_text(encoding="utf-8"))
    return sorted(set(aliases.values())) if aliases else []


def update_page(path: Path, root: Path) -> int:
    """Rewrite every bound figure of a page from its source, keeping the page's precision;
    returns the number of figures changed. Unreadable bindings are left for check_page."""
    text = path.read_text(encoding="utf-8")
    aliases = declared_sources(text) or {}
    documents: dict[str, Any] = {}
    edits: list[tuple[int, int, str]] = []
    for binding in bindings(text):
        source = aliases.get(binding.alias)
        if source is None:
            continue
        try:
            if source not in documents:
                documents[source] = read_source(root / source)
            value = transform(lookup(documents[source], binding.key), binding.transforms)
            if isinstance(value, str):
                continue  # text values are reworded by hand
            expected = render(value, binding.shown, binding.transforms)
        except FigureError:
            continue
        if expected != binding.shown:
            edits.append((binding.start, binding.end, expected))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    if edits:
        path.write_text(text, encoding="utf-8")
    return len(edits)


def pages(root: Path) -> list[Path]:
    """README and every docs page."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def results_problems(root: Path, source: str) -> list[str]:
    """What is wrong with a results file as a source: no provenance, or made from a dirty tree.
    (params.yaml and other inputs that are not results are exempt.)"""
    if not source.startswith(RESULTS_DIR + "/") or not source.endswith(".json"):
        return []
    try:
        record = read_source(root / source).get("provenance")
    except (FigureError, AttributeError) as exc:
        return [str(exc)]
    if not isinstance(record, Mapping):
        return [
            "no provenance: expected a results file the benchmarks write (scoring.core.figures.write_results)"
        ]
    if not record.get("tree_clean"):
        return [f"made from a dirty tree at {str(record.get('commit'))[:12]}: {record.get('dirty_paths')}"]
    return []


def check_pages(root: Path) -> list[Problem]:
    """check_page over README and docs, and the provenance of every results file they quote."""
    problems = []
    seen: set[str] = set()
    for page in pages(root):
        problems += check_page(page, root)
        for source in sources_of(page):
            if source in seen:
                continue
            seen.add(source)
            problems += [
                Problem(source, 0, "", source, message) for message in results_problems(root, source)
            ]
    return problems
