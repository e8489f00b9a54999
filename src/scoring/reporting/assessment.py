"""The applicant's assessment: one self-contained HTML page a credit committee can read.

:func:`assessment_page` renders one record of :meth:`scoring.serving.scorer.Scorer.assess` (the
exported model's own output for the application, so the page's numbers are the served ones):

- the application (amount, price, down payment, term, rate, repayment method, income, debt);
- PD, score, grade, decision and the policy rules hit;
- up to four reasons with a waterfall of the reason groups' log-odds contributions, from the
  model's expected log-odds to this applicant's (before calibration);
- the suggested limit with the value of every constraint (DTI, LTV, the grade's cap) and the
  binding one;
- the repayments of the requested and of the suggested amount under both methods (equal
  instalments and equal principal): first, last and total payment and the interest, the full
  schedules folded away;
- payment-to-income and debt-to-income, and the model's name, version and digest.

Labels in English or Chinese (``lang``: ``en`` | ``zh``). The page loads nothing: inline CSS, the
waterfall as a data: URI, no scripts.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from scoring.core.finance import repayment_schedule, schedule_summary
from scoring.core.io import DataReadError, read_table

if TYPE_CHECKING:
    from scoring.serving.scorer import Scorer

LANGUAGES = ("en", "zh")

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Credit assessment",
        "application": "Application",
        "application_id": "Application",
        "loan_amount": "Amount requested",
        "vehicle_price": "Vehicle price",
        "down_payment": "Down payment",
        "term_months": "Term (months)",
        "annual_rate": "Annual rate",
        "repayment_method": "Repayment method",
        "monthly_income": "Monthly income",
        "existing_monthly_debt": "Existing monthly debt",
        "result": "Risk and decision",
        "pd": "Probability of default (12 months)",
        "score": "Score",
        "grade": "Risk grade",
        "decision": "Decision",
        "policy_rules": "Policy rules hit",
        "none": "none",
        "reasons": "Reasons",
        "waterfall": "Contributions to the model's log-odds by reason code, from the baseline "
        "(the model's expected log-odds) to this applicant's",
        "limit": "Suggested limit",
        "suggested_limit": "Suggested limit",
        "constraint": "Constraint",
        "maximum": "Largest amount it allows",
        "binding": "binding",
        "max_by_dti": "Debt-to-income cap",
        "max_by_ltv": "Loan-to-value cap",
        "max_by_grade_cap": "Grade's amount cap",
        "not_in_force": "not in force",
        "suggested_rate": "Suggested rate",
        "repayments": "Repayments",
        "amount": "Amount",
        "method": "Method",
        "first_payment": "First payment",
        "last_payment": "Last payment",
        "total_payment": "Total paid",
        "total_interest": "Total interest",
        "schedule": "Full schedule",
        "month": "Month",
        "payment": "Payment",
        "interest": "Interest",
        "principal": "Principal",
        "balance": "Balance",
        "requested": "requested",
        "suggested": "suggested",
        "equal_installment": "equal instalments (annuity)",
        "equal_principal": "equal principal",
        "affordability": "Affordability",
        "payment_to_income": "Payment-to-income",
        "debt_to_income": "Debt-to-income",
        "model": "Model",
        "model_name": "Name",
        "model_version": "Version",
        "model_digest": "Digest (SHA-256 of its manifest)",
        "approve": "approve",
        "refer": "refer",
        "decline": "decline",
        "no_limit": "no limit: declined",
    },
    "zh": {
        "title": "信用评估报告",
        "application": "申请信息",
        "application_id": "申请编号",
        "loan_amount": "申请金额",
        "vehicle_price": "车辆价格",
        "down_payment": "首付款",
        "term_months": "期限（月）",
        "annual_rate": "年利率",
        "repayment_method": "还款方式",
        "monthly_income": "月收入",
        "existing_monthly_debt": "现有月负债",
        "result": "风险与决策",
        "pd": "违约概率（12个月）",
        "score": "评分",
        "grade": "风险等级",
        "decision": "决策",
        "policy_rules": "触发的政策规则",
        "none": "无",
        "reasons": "主要原因",
        "waterfall": "各原因代码对模型对数几率的贡献："
        "从基线（模型的平均对数几率，baseline）到该申请人（applicant）",
        "limit": "建议额度",
        "suggested_limit": "建议额度",
        "constraint": "约束",
        "maximum": "允许的最高金额",
        "binding": "起决定作用",
        "max_by_dti": "负债收入比上限",
        "max_by_ltv": "贷款价值比上限",
        "max_by_grade_cap": "等级额度上限",
        "not_in_force": "未启用",
        "suggested_rate": "建议利率",
        "repayments": "还款计划",
        "amount": "金额",
        "method": "方式",
        "first_payment": "首期还款",
        "last_payment": "末期还款",
        "total_payment": "还款总额",
        "total_interest": "利息总额",
        "schedule": "完整还款表",
        "month": "期数",
        "payment": "还款额",
        "interest": "利息",
        "principal": "本金",
        "balance": "剩余本金",
        "requested": "申请",
        "suggested": "建议",
        "equal_installment": "等额本息",
        "equal_principal": "等额本金",
        "affordability": "还款能力",
        "payment_to_income": "月供收入比",
        "debt_to_income": "负债收入比",
        "model": "模型",
        "model_name": "名称",
        "model_version": "版本",
        "model_digest": "摘要（清单的 SHA-256）",
        "approve": "批准",
        "refer": "转人工审核",
        "decline": "拒绝",
        "no_limit": "无额度：已拒绝",
    },
}

APPLICATION_FIELDS = (
    "loan_amount",
    "vehicle_price",
    "down_payment",
    "term_months",
    "annual_rate",
    "repayment_method",
    "monthly_income",
    "existing_monthly_debt",
)
LIMIT_BOUNDS = ("max_by_dti", "max_by_ltv", "max_by_grade_cap")
BINDING_OF = {"max_by_dti": "dti", "max_by_ltv": "ltv", "max_by_grade_cap": "grade_cap"}
METHODS = ("equal_installment", "equal_principal")

_CSS = """
body{font-family:system-ui,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;margin:2em;color:#1d232b}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ccd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #dde;padding:.3em .6em;text-align:right}
th{background:#f1f3f6}td:first-child,th:first-child{text-align:left}
.decision{font-size:1.3em;font-weight:bold}.approve{color:#1a7f37}.refer{color:#9a6700}.decline{color:#cf222e}
.binding{font-weight:bold;background:#fff8c5}img{max-width:100%}details{margin:.4em 0}
"""

CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _money(value: Any) -> str:
    number = float(value)
    return f"{number:,.2f}" if math.isfinite(number) else "n/a"


def _pct(value: Any, digits: int = 2) -> str:
    number = float(value)
    return f"{100 * number:.{digits}f}%" if math.isfinite(number) else "n/a"


def _table(headers: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join(
        (f'<tr class="{row_classes[i]}">' if row_classes and row_classes[i] else "<tr>")
        + "".join(f"<td>{c}</td>" for c in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def waterfall_png(contributions: Mapping[str, Any], top: int = 8) -> bytes:
    """The reason groups' contributions as a waterfall from the expected log-odds to this
    applicant's: the ``top`` largest by size, the rest as one bar. The bars are named by reason
    code, in ASCII whatever the page's language (a machine may have no CJK font); the page's
    caption says what they are."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(contributions["groups"])
    shown, rest = groups[:top], groups[top:]
    names = [f"{g['code']}" for g in shown]
    values = [float(g["value"]) for g in shown]
    if rest:
        names.append("...")
        values.append(float(sum(g["value"] for g in rest)))
    start = float(contributions["expected_log_odds"])
    fig, ax = plt.subplots(figsize=(7, 0.45 * (len(values) + 2) + 1))
    rows = ["baseline", *names, "applicant"]
    levels = [start]
    for i, value in enumerate(values, start=1):
        ax.barh(i, value, left=levels[-1], color="#cf222e" if value > 0 else "#1a7f37")
        levels.append(levels[-1] + value)
    # the two ends as points (bars from 0 would dwarf the contributions), with their values
    for row, level, colour in ((0, start, "#57606a"), (len(values) + 1, levels[-1], "#0969da")):
        ax.plot([level], [row], "o", color=colour, markersize=9)
        ax.annotate(f"{level:.2f}", (level, row), xytext=(8, -4), textcoords="offset points")
    ax.axvline(start, linestyle=":", color="#57606a", linewidth=0.8)
    low, high = min(levels), max(levels)
    pad = 0.2 * (high - low) if high > low else 0.5
    ax.set_xlim(low - pad, high + pad)
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlabel("log-odds")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def repayment_rows(amount: float, annual_rate: float, term_months: int) -> dict[str, pd.DataFrame]:
    """The schedule of ``amount`` under each repayment method."""
    return {method: repayment_schedule(amount, annual_rate, term_months, method) for method in METHODS}


def assessment_page(
    record: Mapping[str, Any],
    application: Mapping[str, Any],
    model: Mapping[str, str],
    lang: str = "en",
) -> str:
    """One applicant's page. ``record``: one of :meth:`Scorer.assess`; ``application``: the raw
    row it came from; ``model``: ``model_name``, ``model_version``, ``model_digest``."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang {lang!r}: expected one of {list(LANGUAGES)}")
    t = LABELS[lang]
    out = record["output"]
    decision = str(out["decision"])
    parts: list[str] = []

    def add(sid: str, body: str) -> None:
        parts.append(f'<section id="{sid}">{body}</section>')

    rows = []
    for name in APPLICATION_FIELDS:
        if name not in application:
            continue
        value = application[name]
        if name == "annual_rate":
            text = _pct(value)
        elif name == "repayment_method":
            text = _esc(t.get(str(value), value))
        elif name == "term_months":
            text = _esc(int(value))
        else:
            text = _money(value)
        rows.append([_esc(t[name]), text])
    add(
        "application",
        f"<h2>{_esc(t['application'])}</h2>"
        + _table([t["application_id"], _esc(out["application_id"])], rows),
    )

    rules = [r for r in str(out["policy_reasons"] or "").split(";") if r]
    add(
        "result",
        f"<h2>{_esc(t['result'])}</h2>"
        + f'<p class="decision {_esc(decision)}" data-field="decision">'
        + f"{_esc(t['decision'])}: {_esc(t.get(decision, decision))}</p>"
        + _table(
            [t["result"], ""],
            [
                [_esc(t["pd"]), f'<span data-field="pd">{_pct(out["pd"], 3)}</span>'],
                [_esc(t["score"]), f'<span data-field="score">{float(out["score"]):.1f}</span>'],
                [_esc(t["grade"]), f'<span data-field="grade">{int(out["grade"])}</span>'],
                [_esc(t["policy_rules"]), _esc(", ".join(rules) if rules else t["none"])],
            ],
        ),
    )

    reasons = [(out.get(f"reason_code_{i}", ""), out.get(f"reason_text_{i}", "")) for i in range(1, 5)]
    reasons = [(c, x) for c, x in reasons if c]
    section = f"<h2>{_esc(t['reasons'])}</h2>"
    if reasons:
        section += "<ol>" + "".join(f"<li><b>{_esc(c)}</b> {_esc(x)}</li>" for c, x in reasons) + "</ol>"
    else:
        section += f"<p>{_esc(t['none'])}</p>"
    if record.get("contributions"):
        png = base64.b64encode(waterfall_png(record["contributions"])).decode("ascii")
        section += (
            f'<figure><img src="data:image/png;base64,{png}" alt="{_esc(t["waterfall"])}" '
            'data-name="waterfall">'
            f"<figcaption>{_esc(t['waterfall'])}</figcaption></figure>"
        )
    add("reasons", section)

    limit = record["limit"]
    binding = str(limit.get("binding_constraint", ""))
    suggested = float(out["suggested_limit"])
    limit_rows, classes = [], []
    for bound in LIMIT_BOUNDS:
        value = limit.get(bound, float("nan"))
        is_binding = BINDING_OF[bound] == binding
        text = _money(value) if value is not None and math.isfinite(float(value)) else _esc(t["not_in_force"])
        limit_rows.append([_esc(t[bound]) + (f" ({_esc(t['binding'])})" if is_binding else ""), text])
        classes.append("binding" if is_binding else "")
    add(
        "limit",
        f"<h2>{_esc(t['limit'])}</h2>"
        + f'<p>{_esc(t["suggested_limit"])}: <b data-field="suggested_limit">'
        + (_money(suggested) if decision != "decline" else _esc(t["no_limit"]))
        + f"</b> ({_esc(binding)})"
        + (
            f"; {_esc(t['suggested_rate'])} {_pct(limit['suggested_rate'])}"
            if limit.get("suggested_rate") is not None and math.isfinite(float(limit["suggested_rate"]))
            else ""
        )
        + "</p>"
        + _table([t["constraint"], t["maximum"]], limit_rows, classes),
    )

    rate, term = float(application["annual_rate"]), int(application["term_months"])
    amounts = [(t["requested"], float(application["loan_amount"]))]
    if decision != "decline" and math.isfinite(suggested) and suggested > 0:
        amounts.append((t["suggested"], suggested))
    pay_rows, details = [], []
    for which, amount in amounts:
        for method, schedule in repayment_rows(amount, rate, term).items():
            summary = schedule_summary(schedule)
            pay_rows.append(
                [
                    f"{_esc(which)}: {_money(amount)}",
                    _esc(t[method]),
                    _money(summary["first_payment"]),
                    _money(summary["last_payment"]),
                    _money(summary["total_payment"]),
                    _money(summary["total_interest"]),
                ]
            )
            table = _table(
                [t["month"], t["payment"], t["interest"], t["principal"], t["balance"]],
                [
                    [str(int(m)), _money(p), _money(i), _money(c), _money(b)]
                    for m, p, i, c, b in zip(
                        *(
                            schedule[k].to_numpy()
                            for k in ("month", "payment", "interest", "principal", "balance")
                        ),
                        strict=True,
                    )
                ],
            )
            details.append(
                f"<details><summary>{_esc(t['schedule'])}: {_esc(which)}, {_esc(t[method])}</summary>"
                f"{table}</details>"
            )
    add(
        "repayments",
        f"<h2>{_esc(t['repayments'])}</h2>"
        + _table(
            [
                t["amount"],
                t["method"],
                t["first_payment"],
                t["last_payment"],
                t["total_payment"],
                t["total_interest"],
            ],
            pay_rows,
        )
        + "".join(details),
    )

    features = record.get("features", {})
    afford = [
        [_esc(t[name]), f'<span data-field="{name}">{_pct(features[name])}</span>']
        for name in ("payment_to_income", "debt_to_income")
        if name in features
    ]
    if afford:
        add(
            "affordability", f"<h2>{_esc(t['affordability'])}</h2>" + _table([t["affordability"], ""], afford)
        )

    add(
        "model",
        f"<h2>{_esc(t['model'])}</h2>"
        + _table(
            [t["model"], ""],
            [
                [_esc(t[k]), f'<code data-field="{k}">{_esc(model.get(k, ""))}</code>']
                for k in ("model_name", "model_version", "model_digest")
            ],
        ),
    )
    title = f"{t['title']}: {out['application_id']}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_esc(title)}</h1>{''.join(parts)}</body></html>\n"
    )


def read_applications(path: str | Path) -> pd.DataFrame:
    """Applications from a JSON file (one object, or a list of them) or a CSV / Parquet file."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise DataReadError(f"{path}: file not found (expected a JSON object or a list of them)")
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataReadError(f"{path}: not valid JSON ({exc})") from None
        rows = [document] if isinstance(document, dict) else document
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise DataReadError(
                f"{path}: expected one application (a JSON object) or a non-empty list of them"
            )
        return pd.DataFrame(rows)
    return read_table(path)


def assessment_pages(
    scorer: Scorer,
    applications: pd.DataFrame,
    model_digest: str,
    lang: str = "en",
    ids: Sequence[str] | None = None,
) -> dict[str, str]:
    """Application id -> its page, for every application of ``applications`` (or those of
    ``ids``, in that order; an id not in the file is an error naming it)."""
    id_column = scorer.spec.id_column
    if id_column not in applications.columns:
        raise DataReadError(f"applications: no id column '{id_column}'; expected the model's id column")
    keys = applications[id_column].astype(str)
    if ids:
        missing = [i for i in ids if i not in set(keys)]
        if missing:
            raise DataReadError(
                f"--id {missing[0]!r}: not among the {len(keys)} applications' {id_column} "
                f"(first: {', '.join(keys.head(3))})"
            )
        applications = pd.concat([applications[keys == i] for i in ids], ignore_index=True)
    else:
        applications = applications.reset_index(drop=True)
    records = scorer.assess(applications)
    model = {
        "model_name": str(scorer.info.get("model_name", "")),
        "model_version": scorer.model_version,
        "model_digest": model_digest,
    }
    return {
        str(record["output"]["application_id"]): assessment_page(
            record, {str(k): v for k, v in applications.iloc[i].items()}, model, lang
        )
        for i, record in enumerate(records)
    }
