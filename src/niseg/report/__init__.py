"""Figures and self-contained HTML reports of segmentations.

Figures are drawn with matplotlib on their own Agg canvas (never through pyplot, so nothing
leaks between calls or needs a display); reports are single HTML files with inline CSS and
embedded PNG images that load nothing from the network.

- :func:`overview_figure` -- image, truth, result, probability, overlay and histogram panels;
- :func:`panels_figure` -- a row of named images (pipeline steps) with outlined masks;
- :func:`save_figure` / :func:`figure_to_png_bytes` -- write or encode a figure;
- :func:`write_html_report` -- headings, text, figures and tables in one HTML page.
"""

from niseg.report._figures import (
    figure_to_png_bytes,
    overview_figure,
    panels_figure,
    save_figure,
)
from niseg.report._html import write_html_report

__all__ = [
    "figure_to_png_bytes",
    "overview_figure",
    "panels_figure",
    "save_figure",
    "write_html_report",
]
