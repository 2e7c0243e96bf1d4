"""HTML building blocks of the reclake view: the page frame with its navigation, tables,
links and forms. Pure; every text is escaped here, so pages pass plain values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from reclake.ui.svg import number

# (path under the view's base, label) of the navigation, in display order.
NAV = (
    ("tables", "Tables"),
    ("snapshots", "Snapshots"),
    ("features", "Features"),
    ("ingest", "Ingest health"),
)

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1a202c;background:#fff}
nav{display:flex;gap:4px;padding:8px 16px;border-bottom:1px solid #e2e8f0;background:#f7fafc}
nav a{padding:6px 12px;border-radius:6px;text-decoration:none;color:#2d3748}
nav a.active{background:#017cee;color:#fff}
main{padding:8px 16px 32px}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.6rem}
table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0}
th,td{border:1px solid #e2e8f0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f7fafc}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#276749;font-weight:600}.bad{color:#c53030;font-weight:600}
.muted{color:#718096}.badge{background:#017cee;color:#fff;border-radius:4px;padding:0 5px}
form.inline{display:inline}button{padding:6px 14px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def esc(value: Any) -> str:
    """Escaped text of a value; None shows as '-', numbers with thousands separators."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return number(value)
    return escape(str(value))


def link(href: str, text: Any, *, top: bool = False) -> str:
    """An anchor with escaped target and text; `top` opens it in the whole window (a page of
    the Airflow UI itself, not inside the view's frame)."""
    frame = " target='_top'" if top else ""
    return f"<a href='{escape(href, quote=True)}'{frame}>{esc(text)}</a>"


def verdict(success: bool | None) -> str:
    """passed / FAILED / - with its colour class."""
    if success is None:
        return "<span class='muted'>-</span>"
    return "<span class='ok'>passed</span>" if success else "<span class='bad'>FAILED</span>"


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    cls: str = "",
    raw: Sequence[str] = (),
) -> str:
    """An HTML table of rows; columns named in `raw` hold markup built by the caller."""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c)
            if c in raw:
                cells.append(f"<td>{value if value is not None else '-'}</td>")
            elif isinstance(value, int | float) and not isinstance(value, bool):
                cells.append(f"<td class='num'>{esc(value)}</td>")
            else:
                cells.append(f"<td>{esc(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def page(title: str, body: str, *, base: str, active: str) -> str:
    """A whole page: title, navigation between the view's pages, body."""
    nav = "".join(
        f"<a class='{'active' if path == active else ''}' href='{base}/{path}'>{label}</a>"
        for path, label in NAV
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)} - reclake</title><style>{STYLE}</style></head>"
        f"<body><nav>{nav}</nav><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def form(action: str, fields: Mapping[str, str], button: str) -> str:
    """A POST form of hidden fields and one submit button."""
    hidden = "".join(
        f"<input type='hidden' name='{escape(k, quote=True)}' value='{escape(v, quote=True)}'>"
        for k, v in fields.items()
    )
    return (
        f"<form method='post' action='{escape(action, quote=True)}'>{hidden}"
        f"<button type='submit'>{escape(button)}</button></form>"
    )
