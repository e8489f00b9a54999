"""The scorecard as an Excel workbook (``reports/scorecard/scorecard.xlsx``), to read and to score by hand.

Sheets:

- **Characteristics**: per selected variable its kind, IV, coefficient, number of bins, the
  lowest and highest points it can give, whether (and why) an analyst overrode its bins, and
  its check (the sign and the points follow risk, the VIF within limit; a failure in red).
- **Bins**: one row per bin, then the variable's ``Missing`` row, then (categorical variables)
  its ``Unseen`` row, with the bounds that scoring by hand needs (below) and the bin's count,
  event rate, WoE, IV and points.
- **Scale**: the points scaling (pdo, base score, base odds, factor, offset), a score-to-PD
  table every 10 points over the scorecard's score range, with the risk grade of each PD on
  the master scale, and the master scale itself.
- **Selection** (when the selection evidence was computed): every candidate variable with its
  IV rank, status and why a dropped one was dropped, and the analyst's overrides with their cost.
- **Read me**: how to score by hand, as here.

Scoring by hand from the Bins sheet: for each variable take the row its value falls in and add
the points of those rows. A numeric value x falls in the row with ``lower <= x < upper`` (bins
are right-open); the unbounded ends are written as the text ``-inf`` and ``inf`` (an empty
cell would read as 0 in a spreadsheet formula). A missing value takes the variable's row whose
``special`` is ``Missing``; a categorical level takes the row whose ``levels`` (the bin's
categories joined by ``|``) contain it, and a level no row holds takes the ``Unseen`` row. The
total is :meth:`ScorecardModel.score`; PD = 1 / (1 + exp((score - offset) / factor)).
Bounds are stored with 16 significant digits (xlsxwriter writes numbers so; Excel itself works
to 15): a bound can differ from the exact split point in its 17th digit, so a value that agrees
with a bound to 15 significant digits is to be placed by the exact split points of
scorecard.json. Split points with few digits (an integer variable's x.5) are held exactly.

The bytes are reproducible: the same inputs give the same file (the document's creation time is
fixed, and xlsxwriter stamps the zip entries with a fixed date).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scoring.reporting.scorecard_section import (
    DROP_REASONS,
    LEVEL_SEPARATOR,
    score_range,
    scorecard_bins,
    scorecard_characteristics,
)

if TYPE_CHECKING:
    from scoring.decision.grades import MasterScale
    from scoring.models.calibration import Calibrator
    from scoring.models.scorecard import ScorecardModel

# A fixed creation time: xlsxwriter would stamp the time of writing, and the file would change
# on every run of the report stage with the same inputs.
WORKBOOK_CREATED = datetime(2000, 1, 1, tzinfo=UTC)
SCORE_STEP = 10.0
CHARACTERISTICS_SHEET = "Characteristics"
BINS_SHEET = "Bins"
SCALE_SHEET = "Scale"
SELECTION_SHEET = "Selection"
README_SHEET = "Read me"
# Titles of the Scale sheet's blocks (column A), where a reader (or a test) finds each table.
SCALING_TITLE = "Points scaling"
SCORE_PD_TITLE = "Score to PD"
MASTER_SCALE_TITLE = "Master scale"
OVERRIDES_TITLE = "Overrides"

_NUMBER_FORMATS = {
    "iv": "0.0000",
    "iv_optimiser": "0.0000",
    "iv_override": "0.0000",
    "iv_cost": "0.0000",
    "woe": "0.0000",
    "coefficient": "0.0000",
    "points": "0.00",
    "min_points": "0.00",
    "max_points": "0.00",
    "event_rate": "0.00%",
    "pd": "0.000%",
    "calibrated_pd": "0.000%",
    "pd_from": "0.000%",
    "pd_to": "0.000%",
    "central_pd": "0.000%",
    "score": "0",
    "score_from": "0.00",
    "score_to": "0.00",
    "single_feature_auc": "0.0000",
    "auc_optimiser": "0.0000",
    "auc_override": "0.0000",
    "auc_cost": "0.0000",
    "vif": "0.00",
}


# ---------------------------------------------------------------------------------- the tables


def score_pd_table(
    model: ScorecardModel,
    master_scale: MasterScale | None = None,
    calibrator: Calibrator | None = None,
    step: float = SCORE_STEP,
) -> pd.DataFrame:
    """Scores every ``step`` points over the scorecard's range, with their PD and risk grade.

    The scores run from the lowest total the scorecard can give, rounded down to a multiple of
    ``step``, to the highest, rounded up. ``pd`` is :meth:`ScorecardModel.score_to_pd`;
    ``calibrated_pd`` (only with a ``calibrator``: give the champion's calibrator when the
    scorecard is the champion) is what the exported model would report; ``grade`` is the master
    scale's grade of the calibrated PD when there is one, else of ``pd``.
    """
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"score step {step!r}: expected a positive number of points")
    low, high = score_range(model)
    scores = np.arange(math.floor(low / step) * step, math.ceil(high / step) * step + step / 2, step)
    table = pd.DataFrame({"score": scores, "pd": model.score_to_pd(scores)})
    graded = table["pd"].to_numpy()
    if calibrator is not None:
        table["calibrated_pd"] = graded = calibrator.predict(graded)
    if master_scale is not None:
        names = np.asarray(master_scale.grade_names, dtype=object)
        table["grade"] = names[master_scale.grade(graded) - 1]
    return table


def master_scale_table(
    master_scale: MasterScale, model: ScorecardModel | None = None, calibrated: bool = False
) -> pd.DataFrame:
    """The risk grades: PD from (exclusive) and to (inclusive), central PD, and score bounds.

    With a ``model`` whose raw PD the grades are applied to (``calibrated`` False), each grade
    also gets the scores that land in it: ``score_from <= score < score_to`` (right-open, like
    the bins; -inf and inf at the ends). A calibrated PD has no such closed form, so then the
    score bounds are left out.
    """
    ranges = master_scale.pd_ranges
    table = pd.DataFrame(
        {
            "grade": master_scale.grade_names,
            "pd_from": [lo for lo, _ in ranges],
            "pd_to": [hi for _, hi in ranges],
            "central_pd": list(master_scale.central_pd),
        }
    )
    if model is not None and not calibrated:
        table["score_from"] = [_score_at(model, hi) for _, hi in ranges]
        table["score_to"] = [_score_at(model, lo) for lo, _ in ranges]
    return table


def _score_at(model: ScorecardModel, pd_: float) -> float:
    """The score whose PD is ``pd_`` (the inverse of score_to_pd); PD 0 is inf, PD 1 is -inf."""
    if pd_ <= 0.0:
        return math.inf
    if pd_ >= 1.0:
        return -math.inf
    return model.offset + model.factor * math.log((1.0 - pd_) / pd_)


def selection_table(selection: Mapping[str, Any]) -> pd.DataFrame:
    """selection.json's candidate variables, IV rank first, with the VIF of the kept ones."""
    vif = selection.get("vif") or {}
    rows = [
        {
            "rank": v.get("rank"),
            "variable": v.get("variable"),
            "kind": v.get("kind"),
            "iv": v.get("iv"),
            "iv_optimiser": v.get("iv_optimiser"),
            "single_feature_auc": v.get("single_feature_auc"),
            "status": v.get("status"),
            "reason": v.get("reason"),
            "reason_text": DROP_REASONS.get(str(v.get("reason")), "") if v.get("reason") else "",
            "detail": v.get("detail") or "",
            "overridden": bool(v.get("overridden")),
            "vif": vif.get(str(v.get("variable"))),
        }
        for v in selection.get("variables", [])
    ]
    columns = [
        "rank",
        "variable",
        "kind",
        "iv",
        "iv_optimiser",
        "single_feature_auc",
        "status",
        "reason",
        "reason_text",
        "detail",
        "overridden",
        "vif",
    ]
    return pd.DataFrame(rows, columns=columns)


def overrides_table(selection: Mapping[str, Any]) -> pd.DataFrame:
    """selection.json's overrides: entry, reason, and their cost in IV and AUC."""
    rows = [
        {
            "variable": o.get("variable"),
            "kind": o.get("kind"),
            "entry": json.dumps(o.get("entry", {}), sort_keys=True),
            "reason": o.get("reason") or "",
            "iv_optimiser": o.get("iv_optimiser"),
            "iv_override": o.get("iv_override"),
            "iv_cost": o.get("iv_cost"),
            "auc_optimiser": o.get("auc_optimiser"),
            "auc_override": o.get("auc_override"),
            "auc_cost": o.get("auc_cost"),
            "auc_on": o.get("auc_on") or "",
            "bins_optimiser": " ; ".join(map(str, o.get("bins_optimiser") or [])),
            "bins_override": " ; ".join(map(str, o.get("bins_override") or [])),
        }
        for o in selection.get("overrides") or []
    ]
    columns = [
        "variable",
        "kind",
        "entry",
        "reason",
        "iv_optimiser",
        "iv_override",
        "iv_cost",
        "auc_optimiser",
        "auc_override",
        "auc_cost",
        "auc_on",
        "bins_optimiser",
        "bins_override",
    ]
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------------- the workbook


def _cell(value: Any) -> Any:
    """A value as the workbook holds it: text for the infinities, blank (None) for NaN, null and ""."""
    if value is None or (isinstance(value, str) and not value):
        return None
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return number
    return str(value)


class _Writer:
    """Formats shared by the sheets, and a frame written as a table with a bold header."""

    def __init__(self, workbook: Any) -> None:
        self.workbook = workbook
        self.bold = workbook.add_format({"bold": True})
        self.header = workbook.add_format({"bold": True, "bg_color": "#F0F3F7", "bottom": 1})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        self._formats: dict[str, Any] = {}

    def number_format(self, column: str) -> Any:
        spec = _NUMBER_FORMATS.get(column)
        if spec is None:
            return None
        if spec not in self._formats:
            self._formats[spec] = self.workbook.add_format({"num_format": spec})
        return self._formats[spec]

    def table(self, sheet: Any, row: int, frame: pd.DataFrame) -> int:
        """``frame`` with its header at ``row``; returns the row after the last one written."""
        for col, name in enumerate(frame.columns):
            sheet.write_string(row, col, str(name), self.header)
        for r, values in enumerate(frame.itertuples(index=False), start=row + 1):
            for col, (name, value) in enumerate(zip(frame.columns, values, strict=True)):
                cell = _cell(value)
                if cell is None:
                    sheet.write_blank(r, col, None)
                elif isinstance(cell, str):
                    sheet.write_string(r, col, cell)
                else:
                    sheet.write_number(r, col, cell, self.number_format(str(name)))
        return row + len(frame) + 1

    @staticmethod
    def widths(sheet: Any, widths: Sequence[float]) -> None:
        for col, width in enumerate(widths):
            sheet.set_column(col, col, width)


def scorecard_workbook(
    model: ScorecardModel | None,
    selection: Mapping[str, Any] | None,
    master_scale: MasterScale | None = None,
    calibrator: Calibrator | None = None,
    champion: str | None = None,
) -> bytes:
    """The scorecard workbook's bytes (see the module's docstring for its sheets).

    ``model`` is None in a run without a scorecard candidate: the workbook then holds the Read
    me sheet, saying so, and the selection evidence if any. ``master_scale`` is the calibrate
    stage's (models/master_scale.json); ``calibrator`` the champion's, to be given only when the
    scorecard is the champion (its PD is then calibrated before it is graded). ``champion`` names
    the champion, for the Read me.
    """
    import xlsxwriter  # only the report stage writes workbooks

    evidence = selection if selection and selection.get("computed") else {}
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    workbook.set_properties(
        {
            "title": "Scorecard",
            "subject": "Points scorecard: bins, points, scaling and selection evidence",
            "created": WORKBOOK_CREATED,
        }
    )
    writer = _Writer(workbook)
    if model is not None:
        _characteristics_sheet(writer, model, selection)
        _bins_sheet(writer, model)
        _scale_sheet(writer, model, master_scale, calibrator, champion)
    if evidence:
        _selection_sheet(writer, evidence)
    _readme_sheet(writer, model, selection, calibrator is not None, champion)
    workbook.close()
    return buffer.getvalue()


def _characteristics_sheet(
    writer: _Writer, model: ScorecardModel, selection: Mapping[str, Any] | None
) -> None:
    sheet = writer.workbook.add_worksheet(CHARACTERISTICS_SHEET)
    table = scorecard_characteristics(model, selection)
    writer.table(sheet, 0, table)
    sheet.freeze_panes(1, 1)
    writer.widths(sheet, [24, 12, 10, 12, 6, 11, 11, 11, 40, 9, 10, 8, 60])
    # a failed check in red, as the report shows it
    check = list(table.columns).index("check")
    red = writer.workbook.add_format({"bg_color": "#F9D2D0", "font_color": "#8C1D18"})
    sheet.conditional_format(
        1,
        check,
        max(len(table), 1),
        check,
        {"type": "cell", "criteria": "!=", "value": '"ok"', "format": red},
    )


def _bins_sheet(writer: _Writer, model: ScorecardModel) -> None:
    sheet = writer.workbook.add_worksheet(BINS_SHEET)
    table = scorecard_bins(model)
    writer.table(sheet, 0, table)
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, len(table), len(table.columns) - 1)
    writer.widths(sheet, [24, 12, 28, 12, 12, 40, 9, 9, 11, 10, 10, 10])


def _scale_sheet(
    writer: _Writer,
    model: ScorecardModel,
    master_scale: MasterScale | None,
    calibrator: Calibrator | None,
    champion: str | None,
) -> None:
    sheet = writer.workbook.add_worksheet(SCALE_SHEET)
    s = model.settings
    low, high = score_range(model)
    sheet.write_string(0, 0, SCALING_TITLE, writer.bold)
    scaling = pd.DataFrame(
        {
            "parameter": [
                "pdo",
                "base_score",
                "base_odds",
                "factor",
                "offset",
                "intercept",
                "variables",
                "min_score",
                "max_score",
            ],
            "value": [
                s.pdo,
                s.base_score,
                s.base_odds,
                model.factor,
                model.offset,
                model.intercept,
                float(len(model.features)),
                low,
                high,
            ],
        }
    )
    row = writer.table(sheet, 1, scaling)
    for text in (
        "factor = pdo / ln 2; offset = base_score - factor * ln(base_odds)",
        "score = the sum over the variables of the points of the value's row (sheet Bins)",
        "PD = 1 / (1 + EXP((score - offset) / factor)); a higher score is a lower risk",
    ):
        sheet.write_string(row, 0, text)
        row += 1

    row += 1
    sheet.write_string(row, 0, SCORE_PD_TITLE, writer.bold)
    scores = score_pd_table(model, master_scale, calibrator)
    sheet.write_string(
        row + 1,
        0,
        f"every {SCORE_STEP:g} points; "
        + (
            "calibrated_pd: the champion's calibration of pd; grade: of calibrated_pd"
            if calibrator is not None
            else "grade: of pd on the master scale"
            + (f" (fitted on the champion's calibrated PD, {champion})" if champion else "")
        ),
    )
    row = writer.table(sheet, row + 2, scores)

    if master_scale is not None:
        row += 1
        sheet.write_string(row, 0, MASTER_SCALE_TITLE, writer.bold)
        sheet.write_string(
            row + 1,
            0,
            "a PD in (pd_from, pd_to] is in the grade"
            + ("" if calibrator is not None else "; so is a score with score_from <= score < score_to"),
        )
        writer.table(
            sheet, row + 2, master_scale_table(master_scale, model, calibrated=calibrator is not None)
        )
    writer.widths(sheet, [14, 14, 14, 14, 12, 12])


def _selection_sheet(writer: _Writer, evidence: Mapping[str, Any]) -> None:
    sheet = writer.workbook.add_worksheet(SELECTION_SHEET)
    row = writer.table(sheet, 0, selection_table(evidence))
    sheet.freeze_panes(1, 2)
    overrides = overrides_table(evidence)
    if not overrides.empty:
        row += 1
        sheet.write_string(row, 0, OVERRIDES_TITLE, writer.bold)
        writer.table(sheet, row + 1, overrides)
    writer.widths(sheet, [6, 24, 12, 10, 12, 12, 9, 16, 36, 36, 10, 8, 40])


def _readme_sheet(
    writer: _Writer,
    model: ScorecardModel | None,
    selection: Mapping[str, Any] | None,
    calibrated: bool,
    champion: str | None,
) -> None:
    sheet = writer.workbook.add_worksheet(README_SHEET)
    if model is None:
        why = (selection or {}).get("why")
        lines = [
            "No scorecard in this run: the scorecard is not among the trained candidates"
            + (f" ({why})" if why else "")
            + "."
        ]
    else:
        lines = [
            "The points scorecard"
            + (
                " (the champion)"
                if champion == "scorecard"
                else f" (the champion is {champion})"
                if champion
                else ""
            )
            + f": {len(model.features)} variables; a higher score is a lower risk.",
            "",
            "Scoring an application by hand (sheet Bins):",
            "1. For each variable, find the row its value falls in:",
            "   - a number x: the row with lower <= x < upper (bins are right-open;"
            " -inf and inf are the open ends);",
            "   - a missing value: the row whose special is Missing;",
            f"   - a category: the row whose levels (joined by '{LEVEL_SEPARATOR}') contain it;"
            " a category no row holds: the row whose special is Unseen.",
            "2. Add the points of those rows: that is the score.",
            "3. PD = 1 / (1 + EXP((score - offset) / factor)) with offset and factor from sheet Scale;"
            " its grade from the master scale there"
            + (" after the champion's calibration (calibrated_pd)." if calibrated else "."),
            "",
            "Bounds hold 16 significant digits and may differ from the exact split point in the 17th:"
            " a value that agrees with a bound to 15 digits is placed by the exact split points of"
            " scorecard.json (models/candidates/scorecard).",
            "event_rate is empty for a bin without training rows; count, event_rate, WoE and IV are"
            " training figures.",
        ]
        if not (selection and selection.get("computed")):
            why = (selection or {}).get("why")
            lines += ["", f"The selection evidence was not computed: {why or 'no selection.json'}."]
    for row, line in enumerate(lines):
        sheet.write_string(row, 0, line)
    sheet.set_column(0, 0, 110)
