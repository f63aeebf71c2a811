"""The run's one-page summary (``index.html``): what the segments are, what they are worth
and which campaign to send to whom, with a navigation header shared by every report."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from segkit.naming import feature_label
from segkit.stages import tables
from segkit.stages.registry import STAGES
from segkit.stages.text import plain

_NAV_CSS = """nav.segkit{position:sticky;top:0;background:#f4f6f8;border-bottom:1px solid #ccd;
padding:.5em 1em;margin:0 0 1em;font:14px system-ui,sans-serif;display:flex;flex-wrap:wrap;
gap:.4em 1.2em;z-index:10}nav.segkit a{color:#1a4f8b;text-decoration:none}
nav.segkit .here{font-weight:bold}nav.segkit .skipped{color:#888}
@media print{nav.segkit{position:static}}"""
_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:0 auto;padding:0 1em 2em;color:#222}
table.seg{border-collapse:collapse;margin:.5em 0;font-size:14px}
table.seg td,table.seg th{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:left}
table.seg td.num{text-align:right;white-space:nowrap}
.failed{color:#b00}.skipped{color:#888}.ok{color:#070}
figure{margin:1em 0;break-inside:avoid}figure img{max-width:100%}
figcaption{font-size:13px;color:#555}
@media print{section{break-before:page}
 section:first-of-type{break-before:auto}table{break-inside:avoid}}
"""


def nav(run: str, source: str, created: str, here: str, stages: list[dict[str, Any]]) -> str:
    """The header of every report: run, data, date, the summary and the stage reports."""
    links = [
        '<a href="index.html"' + (' class="here"' if here == "summary" else "") + ">Summary</a>"
    ]
    for st in stages:
        label = f"{st['number']:02d} {html.escape(st['title'])}"
        if st["status"] == "not run":
            links.append(f'<span class="skipped">{label}</span>')
        else:
            cls = ' class="here"' if st["name"] == here else ""
            links.append(f'<a href="{st["report"]}"{cls}>{label}</a>')
    meta = f"segkit run <b>{html.escape(run)}</b> · data: {html.escape(source)} · {created}"
    return f'<style>{_NAV_CSS}</style><nav class="segkit"><span>{meta}</span>{"".join(links)}</nav>'


def _read(folder: Path, name: str) -> pd.DataFrame | None:
    path = folder / "artifacts" / name
    return pd.read_csv(path) if path.is_file() else None


def segment_rows(
    folder: Path, currency: str = "", params: dict[str, Any] | None = None
) -> tuple[list[str], list[list[str]]]:
    """The segment table of the summary: header and formatted rows (empty without segments).

    The value columns are revenue's for a transaction log, else those of ``cluster.value``
    (named by its label in ``data.customers.labels``) when the run's ``params`` set one.
    """
    prof = _read(folder, "profiles.csv")
    if prof is None:
        return [], []
    # 0 = the small segments folded together (privacy): a row of its own, last, with its
    # size only (the table would otherwise leave customers out without a word)
    prof = pd.concat([prof[prof["segment"] > 0], prof[prof["segment"] <= 0]])
    head = ["segment", "name", "customers", "share of customers"]
    cols: list[tuple[str, Any]] = []
    value, label = _value_column(prof, params or {})
    if value:
        head += [f"share of {label}", f"{label} per customer"]
        cols += [
            ("share_revenue" if value == "revenue" else "share_value", tables.fmt_pct),
            (f"mean_{value}", lambda v: tables.fmt_money(v, currency)),
        ]
    clv = _read(folder, "clv_segments.csv")
    recs = _read(folder, "ab_recommendations.csv")
    if recs is not None:
        recs = recs[recs["segment_col"] == "segment"]
        recs = recs.set_index(recs["segment"].astype(str))
    head += ["CLV per customer"] * (clv is not None) + ["campaign decision"] * (recs is not None)
    rows = []
    for _, r in prof.iterrows():
        folded = r["segment"] <= 0
        number = tables.DASH if folded else str(int(r["segment"]))
        row = [number, str(r["segment_name"]), tables.fmt_int(r["n"])]
        row.append(tables.fmt_pct(r["share_customers"]))
        if folded:
            rows.append(row + [tables.DASH] * (len(head) - len(row)))
            continue
        row += [f(r.get(c)) for c, f in cols]
        if clv is not None:
            match = clv.loc[clv["segment"] == r["segment"], "clv_per_customer"]
            row.append(tables.fmt_money(match.iloc[0] if len(match) else float("nan"), currency))
        if recs is not None:
            seg = str(int(r["segment"]))
            rec = recs.loc[seg] if seg in recs.index else None
            row.append(tables.DASH if rec is None else _decision(rec))
        rows.append(row)
    return head, rows


def _value_column(prof: pd.DataFrame, params: dict[str, Any]) -> tuple[str, str]:
    """(column, label) of the value in the profiles, or ("", "") without one."""
    if "share_revenue" in prof:
        return "revenue", "revenue"
    value = (params.get("cluster") or {}).get("value") or ""
    if not value or "share_value" not in prof or f"mean_{value}" not in prof:
        return "", ""
    labels = ((params.get("data") or {}).get("customers") or {}).get("labels") or {}
    return value, feature_label(value, labels)


def _decision(rec: Any) -> str:
    campaign = str(rec["campaign"])
    return str(rec["action"]) if campaign in ("none", "nan", "") else f"{rec['action']}: {campaign}"


def main_figure(nb_path: Path) -> str | None:
    """The richest PNG an executed notebook shows (the largest), base64, or None."""
    if not nb_path.is_file():
        return None
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    pngs = [
        "".join(png) if isinstance(png, list) else str(png)
        for cell in nb.get("cells", [])
        for out in cell.get("outputs", [])
        if (png := out.get("data", {}).get("image/png"))
    ]
    return max(pngs, key=len) if pngs else None


def page(folder: Path, params: dict[str, Any], rows: list[dict[str, Any]], created: str) -> str:
    """The summary page of a finished run folder."""
    name, currency = params["name"], params.get("report", {}).get("currency", "") or ""
    source = source_of(params)
    stages = stage_links(rows)
    parts = [f"<h1>{html.escape(name)}: what the data say</h1>", "<section><h2>In brief</h2><ul>"]
    for r in rows:
        text = plain(r["headline"] or r["error"] or "")
        parts.append(f"<li><b>{html.escape(r['stage'])}</b>: {html.escape(text)}</li>")
    parts.append("</ul></section>")
    head, seg_rows = segment_rows(folder, currency, params)
    if seg_rows:
        parts.append("<section><h2>The segments</h2>" + _table(head, seg_rows) + "</section>")
    parts.append(_figures(folder, rows))
    parts.append(_details(rows))
    body = "\n".join(parts)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>segkit {html.escape(name)}: summary</title><style>{_CSS}</style></head><body>"
        f"{nav(name, source, created, 'summary', stages)}{body}</body></html>"
    )


def source_of(params: dict[str, Any]) -> str:
    """The input files' names for the reports' header (an experiment file that is also
    the customer table, as Hillstrom's, once).

    >>> source_of({"data": {"source": "files", "transactions": None,
    ...            "customers": {"path": "d/h.csv"}, "experiment": {"path": "d/h.csv"}}})
    'h.csv'
    """
    d = params["data"]
    if d["source"] == "demo":
        return "synthetic demo retailer"
    names = [Path(d[t]["path"]).name for t in ("transactions", "customers", "experiment") if d[t]]
    return ", ".join(dict.fromkeys(names))  # a file read as two tables is named once


def stage_links(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done = {r["stage"]: r for r in rows}
    out = []
    for st in STAGES:
        r = done.get(st.name)
        status = r["status"] if r else "not run"
        if r and r["status"] == "skipped" and r.get("blocked"):
            status = "not run"
        out.append(
            {
                "name": st.name,
                "number": st.number,
                "title": st.title,
                "report": st.report,
                "status": status,
            }
        )
    return out


_TEXT_COLUMNS = {"name", "campaign decision"}


def _table(head: list[str], rows: list[list[str]]) -> str:
    """The segment table: cells formatted by :mod:`segkit.stages.tables`, escaped here;
    a dash is explained under the table, as in the stage reports."""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    num = [h not in _TEXT_COLUMNS for h in head]
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if n else ''}>{html.escape(v)}</td>"
            for n, v in zip(num, row, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    note = ""
    if any(v == tables.DASH for row in rows for v in row):
        note = f"<p class='note'>{html.escape(_DASH_NOTE)}</p>"
    return f'<table class="seg"><tr>{th}</tr>{body}</table>{note}'


_DASH_NOTE = (
    "– no value: no CLV for the segment, or no campaign evaluated for it "
    "(details in the stage reports)."
)


def _figures(folder: Path, rows: list[dict[str, Any]]) -> str:
    parts = ["<section><h2>One chart per stage</h2>"]
    for st in STAGES:
        r = next((x for x in rows if x["stage"] == st.name and x["status"] == "ok"), None)
        png = main_figure(folder / st.notebook) if r else None
        if not png:
            continue
        caption = html.escape(plain(r["headline"]) if r else "")
        parts.append(
            f'<figure><a href="{st.report}"><img src="data:image/png;base64,{png}" '
            f'alt="{caption}"></a><figcaption>{html.escape(st.title)}: {caption}</figcaption></figure>'
        )
    parts.append("</section>")
    return "\n".join(parts)


def _details(rows: list[dict[str, Any]]) -> str:
    cells = []
    for r in rows:
        cells.append(
            f"<tr><td>{html.escape(r['stage'])}</td><td class='{r['status']}'>{r['status']}</td>"
            f"<td class='num'>{r['seconds']:.1f}&nbsp;s</td>"
            f"<td class='num'>{r['overhead_seconds']:.1f}&nbsp;s</td></tr>"
        )
    return (
        "<section><h2>Run details</h2><table class='seg'><tr><th>stage</th><th>status</th>"
        "<th>time</th><th title='waiting for the kernel, papermill: the time not spent in "
        "the cells'>overhead</th></tr>" + "".join(cells) + "</table><p>Parameters: "
        '<a href="params.yaml">params.yaml</a>; provenance: <a href="manifest.json">'
        "manifest.json</a>.</p></section>"
    )


def skipped_page(
    run: str, source: str, created: str, stage: str, reason: str, stages: list[dict[str, Any]]
) -> str:
    """A skipped stage's report: one short section saying why and what would enable it."""
    st = next(s for s in STAGES if s.name == stage)
    enable = f"<p>What would enable it: {html.escape(st.enable)}.</p>" if st.enable else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(st.title)}'
        f"</title><style>{_CSS}</style></head><body>{nav(run, source, created, stage, stages)}"
        f"<h1>{st.number:02d} · {html.escape(st.title)}</h1><section><p><b>This stage was skipped."
        f"</b> {html.escape(plain(reason).removeprefix('Skipped: '))}</p>{enable}</section>"
        "</body></html>"
    )
