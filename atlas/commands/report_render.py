"""``atlas report``'s forms: text, markdown and one self-contained html page (inline
SVG bars, no script, nothing fetched); json is the report itself."""

from __future__ import annotations

import html
import time
from typing import Any


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else "never"


def _ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.1%}"


def sections(doc: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]], list[list[str]]]]:
    """(title, key figures, table rows with a header row first) for each section."""
    out: list[tuple[str, list[tuple[str, str]], list[list[str]]]] = []
    ing = doc.get("ingestion")
    if ing:
        figures = [
            ("items stored", str(ing["items"])),
            ("items per hour", str(ing["items_per_hour"])),
            ("fetch success ratio", _ratio(ing.get("success_ratio"))),
        ]
        if ing.get("sources_ok_ratio") is not None:
            figures.append(("sources whose last fetch worked", _ratio(ing["sources_ok_ratio"])))
        if ing.get("fetch_p95_seconds") is not None:
            figures.append(("fetch duration p95", f"{ing['fetch_p95_seconds']:.3f} s"))
        rows = [["source", "items", "consecutive errors", "last error"]]
        rows += [
            [s["source"], str(s["items"]), str(s["consecutive_errors"]), s.get("last_error", "")]
            for s in ing["failing_sources"]
        ]
        out.append(
            (
                "Ingestion",
                figures,
                [["source", "items"]]
                + [[s["source"], str(s["items"])] for s in ing["top_sources"]],
            )
        )
        out.append(("Failing sources", [("failing", str(len(ing["failing_sources"])))], rows))
    rec = doc.get("reconciler")
    if rec:
        figures = [(k.replace("_", " "), str(v)) for k, v in rec.items() if k != "outcomes"]
        rows = [["outcome", "revisions"]] + [[k, str(v)] for k, v in rec["outcomes"].items()]
        out.append(("Reconciles", figures, rows))
    api = doc.get("api")
    if api:
        out.append(("API", [(k.replace("_", " "), str(v)) for k, v in api.items()], []))
    al = doc.get("alerts")
    if al:
        rows = [["rule", "fired", "firing (s)"]]
        rows += [[a["rule"], str(a["fired"]), str(a["firing_seconds"])] for a in al["by_rule"]]
        out.append(("Alerts", [("alerts fired", str(al["fired"]))], rows))
    return out


def title(doc: dict[str, Any]) -> str:
    w = doc["window"]
    return f"Atlas report {_when(w['since'])} – {_when(w['until'])} (from {doc['from']})"


def text(doc: dict[str, Any]) -> str:
    lines = [title(doc)]
    for name, figures, rows in sections(doc):
        lines += ["", name]
        lines += [f"  {k + ':':<34} {v}" for k, v in figures]
        if len(rows) > 1:
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            lines += [
                "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows
            ]
    lines += [f"\nnot included: {m}" for m in doc.get("missing", [])]
    return "\n".join(lines) + "\n"


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def markdown(doc: dict[str, Any]) -> str:
    lines = [f"## {title(doc)}"]
    for name, figures, rows in sections(doc):
        lines += ["", f"### {name}", ""]
        lines += [f"- **{k}**: {_md_cell(v)}" for k, v in figures]
        if len(rows) > 1:
            lines += ["", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows[1:]]
    lines += [f"\n_Not included: {m}_" for m in doc.get("missing", [])]
    return "\n".join(lines) + "\n"


def _bars(rows: list[list[str]]) -> str:
    """An inline SVG bar chart of the second column (numbers) by the first."""
    data = [(r[0], float(r[1])) for r in rows[1:] if r[1].replace(".", "", 1).isdigit()]
    if not data:
        return ""
    top = max(v for _, v in data) or 1.0
    bar_h, width = 18, 400
    parts = [f'<svg role="img" width="{width + 220}" height="{bar_h * len(data) + 4}">']
    for i, (label, v) in enumerate(data):
        y, w = i * bar_h + 2, max(1, round(width * v / top))
        parts.append(
            f'<text x="0" y="{y + 13}" font-size="12">{html.escape(label[:28])}</text>'
            f'<rect x="200" y="{y}" width="{w}" height="{bar_h - 4}" fill="#3b7dd8"/>'
            f'<text x="{205 + w}" y="{y + 13}" font-size="12">{v:g}</text>'
        )
    return "".join(parts) + "</svg>"


def page(doc: dict[str, Any]) -> str:
    e = html.escape
    body = [f"<h1>{e(title(doc))}</h1>"]
    for name, figures, rows in sections(doc):
        body.append(f"<section><h2>{e(name)}</h2><dl>")
        body += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in figures]
        body.append("</dl>")
        if len(rows) > 1:
            body.append(_bars(rows))
            body.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in rows[0]) + "</tr>")
            body += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows[1:]]
            body.append("</table>")
        body.append("</section>")
    body += [f"<p><em>Not included: {e(m)}</em></p>" for m in doc.get("missing", [])]
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
        "dl{display:grid;grid-template-columns:max-content auto;gap:2px 1em}dd{margin:0}"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title(doc))}'
        f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )
