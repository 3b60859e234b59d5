"""Self-contained HTML reports: inline CSS, embedded PNG figures, nothing from the network."""

from __future__ import annotations

import base64
import datetime
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
_SECTION_KEYS = {"heading", "text", "figure", "table"}

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
footer { margin-top: 3rem; font-size: .8rem; color: #6b7380; }
"""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


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


def _table(table: Any, where: str) -> str:
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
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    raise TypeError(f"{where} must be a dict or a list of dicts, got {type(table).__name__}")


def _figure(figure: Any, where: str, alt: str) -> str:
    if isinstance(figure, Figure):
        png = figure_to_png_bytes(figure)
    elif isinstance(figure, (bytes, bytearray, memoryview)):
        png = bytes(figure)
        if not png.startswith(_PNG_SIGNATURE):
            raise ValueError(f"{where} holds bytes that are not a PNG image")
    else:
        raise TypeError(f"{where} must be a matplotlib Figure or PNG bytes")
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"></figure>'


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
            "figure and table"
        )
    heading = section.get("heading")
    if not isinstance(heading, str):
        raise TypeError(f"{where}['heading'] must be a string")
    parts = [f"<section><h2>{html.escape(heading)}</h2>"]
    if section.get("text") is not None:
        parts.append(_text(section["text"], f"{where}['text']"))
    if section.get("figure") is not None:
        parts.append(_figure(section["figure"], f"{where}['figure']", heading))
    if section.get("table") is not None:
        parts.append(_table(section["table"], f"{where}['table']"))
    parts.append("</section>")
    return "\n".join(parts)


def _render_html(title: str, sections: Sequence[Mapping[str, Any]]) -> str:
    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}")
    if isinstance(sections, (str, bytes, Mapping)) or not isinstance(sections, Sequence):
        raise TypeError("sections must be a list of dicts")
    body = "\n".join(_section(s, k) for k, s in enumerate(sections))
    created = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="niseg {html.escape(__version__)}">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>{html.escape(title)}</h1>\n{body}\n"
        f"<footer>Made with niseg {html.escape(__version__)} on "
        f"{html.escape(created)}.</footer>\n</main>\n</body>\n</html>\n"
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
        Each ``{"heading": str, "text": str, "figure": Figure or PNG bytes, "table": dict or
        list of dict}``; only ``heading`` is required. Text is plain (HTML-escaped; blank lines
        separate paragraphs). A figure is embedded as a base64 PNG. A table is a dict
        (two columns: name, value) or a list of dicts (one row each, columns from the keys);
        floats are shown with 4 significant digits.
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
