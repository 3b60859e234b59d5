"""Self-contained HTML reports: inline CSS, embedded PNG figures, nothing from the network."""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import math
import os
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from niseg import __version__
from niseg.io import atomic_output
from niseg.report._figures import figure_to_png_bytes

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SECTION_KEYS = {"heading", "text", "code", "figure", "gallery", "table", "sortable"}
_GALLERY_KEYS = {"caption", "image", "note"}

# The page must open offline and years later: system fonts only, no external resources, and
# a content security policy that forbids the browser from fetching anything at all.
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1d2330; background: #f6f7f9; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem 2rem 3rem; background: #fff; }
h1 { font-size: 1.6rem; border-bottom: 2px solid #2d5f8b; padding-bottom: .4rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; color: #2d5f8b; }
p { white-space: pre-wrap; }
img { max-width: 100%; height: auto; border: 1px solid #dde1e7; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .92rem; }
th, td { border: 1px solid #cfd5dd; padding: .25rem .6rem; text-align: left; }
th { background: #eef2f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[data-order="asc"]::after { content: " \\25B2"; }
table.sortable th[data-order="desc"]::after { content: " \\25BC"; }
pre { background: #f3f5f8; border: 1px solid #dde1e7; padding: .6rem; overflow-x: auto;
      font-size: .85rem; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
           gap: .8rem; }
.gallery figure { margin: 0; }
.gallery img { width: 100%; image-rendering: pixelated; }
.gallery figcaption { font-size: .8rem; overflow-wrap: anywhere; }
.gallery .missing { aspect-ratio: 1; background: #c9cdd3; color: #3a404a; display: flex;
                    align-items: center; justify-content: center; text-align: center;
                    font-size: .85rem; padding: .5rem; }
footer { margin-top: 3rem; font-size: .8rem; color: #6b7380; }
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

# Sorting a table needs a few lines of script. The page allows exactly this script (by its
# hash) and nothing else, so text from files can never run as code even if escaping failed.
_SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
    var up = th.getAttribute("data-order") !== "asc";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("data-order"); });
    th.setAttribute("data-order", up ? "asc" : "desc");
    function value(row) {
      var text = row.cells[col] ? row.cells[col].textContent.trim() : "";
      var number = text === "" ? NaN : Number(text);
      return isNaN(number) ? text : number;
    }
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a), y = value(b), c;
      if (typeof x === "number" && typeof y === "number") { c = x - y; }
      else if (typeof x === "number") { c = -1; }
      else if (typeof y === "number") { c = 1; }
      else { c = x.localeCompare(y); }
      return up ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""
_SORT_HASH = base64.b64encode(hashlib.sha256(_SORT_SCRIPT.encode("utf-8")).digest()).decode()


def _format(value: Any) -> str:
    """Plain text of a table value; floats with 4 significant digits."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (Integral, np.integer)):
        return str(int(value))
    if isinstance(value, (Real, np.floating)):
        v = float(value)
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        value = value.tolist()
        if not isinstance(value, list):
            return _format(value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_format(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    return str(value)


def _cell(value: Any, tag: str = "td") -> str:
    numeric = isinstance(value, (Real, np.number)) and not isinstance(value, (bool, np.bool_))
    cls = ' class="num"' if numeric and tag == "td" else ""
    return f"<{tag}{cls}>{html.escape(_format(value))}</{tag}>"


def _table(table: Any, where: str, sortable: bool = False) -> str:
    if sortable and not (isinstance(table, Sequence) and not isinstance(table, (str, bytes))):
        raise TypeError(f"{where} must be a list of dicts to be sortable")
    if isinstance(table, Mapping):
        rows = "".join(
            f"<tr>{_cell(str(key), 'th')}{_cell(value)}</tr>" for key, value in table.items()
        )
        return f"<table>{rows}</table>"
    if isinstance(table, Sequence) and not isinstance(table, (str, bytes)):
        if not all(isinstance(row, Mapping) for row in table):
            raise TypeError(f"{where} must be a dict or a list of dicts")
        columns: list[Any] = []
        for row in table:
            columns += [key for key in row if key not in columns]
        head = "".join(_cell(str(c), "th") for c in columns)
        body = "".join(
            "<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>" for row in table
        )
        cls = ' class="sortable"' if sortable else ""
        return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    raise TypeError(f"{where} must be a dict or a list of dicts, got {type(table).__name__}")


def _png(figure: Any, where: str) -> str:
    """Base64 text of a Figure or of PNG bytes."""
    if isinstance(figure, Figure):
        png = figure_to_png_bytes(figure)
    elif isinstance(figure, (bytes, bytearray, memoryview)):
        png = bytes(figure)
        if not png.startswith(_PNG_SIGNATURE):
            raise ValueError(f"{where} holds bytes that are not a PNG image")
    else:
        raise TypeError(f"{where} must be a matplotlib Figure or PNG bytes")
    return base64.b64encode(png).decode("ascii")


def _figure(figure: Any, where: str, alt: str) -> str:
    data = _png(figure, where)
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"></figure>'


def _gallery(items: Any, where: str) -> str:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise TypeError(f"{where} must be a list of dicts")
    tiles = []
    for k, item in enumerate(items):
        at = f"{where}[{k}]"
        if not isinstance(item, Mapping):
            raise TypeError(f"{at} must be a dict, got {type(item).__name__}")
        unknown = set(item) - _GALLERY_KEYS
        if unknown:
            raise ValueError(f"{at} has unknown key(s) {sorted(map(str, unknown))}; expected "
                             "caption, image and note")
        caption = item.get("caption")
        if not isinstance(caption, str):
            raise TypeError(f"{at}['caption'] must be a string")
        note = item.get("note")
        if note is not None and not isinstance(note, str):
            raise TypeError(f"{at}['note'] must be a string")
        if item.get("image") is None:
            tile = f'<div class="missing">{html.escape(note or "no image")}</div>'
            note = None
        else:
            data = _png(item["image"], f"{at}['image']")
            tile = f'<img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        text = html.escape(caption) + (f"<br>{html.escape(note)}" if note else "")
        tiles.append(f"<figure>{tile}<figcaption>{text}</figcaption></figure>")
    return f'<div class="gallery">{"".join(tiles)}</div>'


def _text(text: Any, where: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{where} must be a string, got {type(text).__name__}")
    paragraphs = [p.strip("\n") for p in text.replace("\r\n", "\n").split("\n\n")]
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs if p.strip())


def _section(section: Any, index: int) -> str:
    where = f"sections[{index}]"
    if not isinstance(section, Mapping):
        raise TypeError(f"{where} must be a dict, got {type(section).__name__}")
    unknown = set(section) - _SECTION_KEYS
    if unknown:
        raise ValueError(
            f"{where} has unknown key(s) {sorted(map(str, unknown))}; expected heading, text, "
            "code, figure, gallery, table and sortable"
        )
    heading = section.get("heading")
    if not isinstance(heading, str):
        raise TypeError(f"{where}['heading'] must be a string")
    parts = [f"<section><h2>{html.escape(heading)}</h2>"]
    if section.get("text") is not None:
        parts.append(_text(section["text"], f"{where}['text']"))
    if section.get("code") is not None:
        if not isinstance(section["code"], str):
            raise TypeError(f"{where}['code'] must be a string")
        parts.append(f"<pre>{html.escape(section['code'])}</pre>")
    if section.get("figure") is not None:
        parts.append(_figure(section["figure"], f"{where}['figure']", heading))
    if section.get("gallery") is not None:
        parts.append(_gallery(section["gallery"], f"{where}['gallery']"))
    if section.get("table") is not None:
        parts.append(_table(section["table"], f"{where}['table']",
                            bool(section.get("sortable", False))))
    parts.append("</section>")
    return "\n".join(parts)


def _render_html(title: str, sections: Sequence[Mapping[str, Any]]) -> str:
    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}")
    if isinstance(sections, (str, bytes, Mapping)) or not isinstance(sections, Sequence):
        raise TypeError("sections must be a list of dicts")
    body = "\n".join(_section(s, k) for k, s in enumerate(sections))
    sortable = any(isinstance(s, Mapping) and s.get("sortable") and s.get("table") is not None
                   for s in sections)
    csp = _CSP + (f"; script-src 'sha256-{_SORT_HASH}'" if sortable else "")
    script = f"<script>{_SORT_SCRIPT}</script>\n" if sortable else ""
    created = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="niseg {html.escape(__version__)}">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>{html.escape(title)}</h1>\n{body}\n"
        f"<footer>Made with niseg {html.escape(__version__)} on "
        f"{html.escape(created)}.</footer>\n</main>\n{script}</body>\n</html>\n"
    )


def write_html_report(
    path: str | os.PathLike,
    *,
    title: str,
    sections: Sequence[Mapping[str, Any]],
    overwrite: bool = False,
) -> Path:
    """Write a self-contained HTML report: one file, figures embedded, nothing from the network.

    Parameters
    ----------
    path : str or PathLike
        Output ``.html`` file.
    title : str
        Page title and top heading.
    sections : list of dict
        Each ``{"heading": str, "text": str, "code": str, "figure": Figure or PNG bytes,
        "gallery": list of dict, "table": dict or list of dict, "sortable": bool}``; only
        ``heading`` is required. Text is plain (HTML-escaped; blank lines separate
        paragraphs); code is shown verbatim in a monospace block. A figure is embedded as a
        base64 PNG. A gallery is a grid of small images, each ``{"caption": str, "image":
        Figure, PNG bytes or None, "note": str}``; an item without an image is drawn as a
        grey tile showing its note. A table is a dict (two columns: name, value) or a list of
        dicts (one row each, columns from the keys); floats are shown with 4 significant
        digits. ``sortable=True`` lets the reader sort a list-of-dicts table by clicking a
        column header (numbers numerically); the page then carries that one inline script,
        allowed by its hash, and still loads nothing.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
    >>> page = write_html_report(out, title="Scores", sections=[
    ...     {"heading": "Dice", "text": "Result <b>vs</b> truth", "table": {"dice": 0.912345}}])
    >>> text = page.read_text()
    >>> "0.9123" in text, "&lt;b&gt;vs&lt;/b&gt;" in text
    (True, True)
    """
    page = _render_html(title, sections)
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
