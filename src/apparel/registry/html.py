"""A self-contained HTML evaluation report (tables + inline plots) for the KFP UI."""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

from apparel.evaluation.report import EvaluationReport, served_line
from apparel.registry import reports


def _image(path: Path) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">'


def _table(rows: dict[str, dict[str, float]], title: str) -> str:
    if not rows:
        return ""
    metrics = list(next(iter(rows.values())))
    head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
    body = "".join(f"<tr><td>{html.escape(k)}</td>" + "".join(f"<td>{v[m]:.3f}</td>" for m in metrics) + "</tr>"
                   for k, v in sorted(rows.items()))
    return f"<h2>{html.escape(title)}</h2><table><tr><th></th>{head}</tr>{body}</table>"


def evaluation_html(report: EvaluationReport, baselines: dict[str, EvaluationReport]) -> str:
    with tempfile.TemporaryDirectory() as folder:
        curves, bars = Path(folder) / "curves.png", Path(folder) / "bars.png"
        reports.recall_curves(report, curves)
        reports.comparison_bars({**baselines, "unified": report}, bars)
        plots = _image(curves) + _image(bars)
    served = f"<p>{html.escape(served_line(report.served))}</p>" if report.served else ""
    return ("<html><head><style>body{font-family:sans-serif} td,th{padding:2px 8px;text-align:right}</style>"
            f"</head><body><h1>Evaluation on {html.escape(report.eval_set)}</h1>{plots}"
            f"{_table(report.retrieval, 'Retrieval per vertical')}{served}{_table(report.attributes, 'Attributes')}"
            "</body></html>")
