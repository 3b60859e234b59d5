"""Figures and self-contained HTML reports of segmentations.

Figures are drawn with matplotlib on their own Agg canvas (never through pyplot, so nothing
leaks between calls or needs a display); reports are single HTML files with inline CSS and
embedded PNG images that load nothing from the network.

- :func:`overview_figure` -- image, truth, result, probability, overlay and histogram panels;
- :func:`panels_figure` -- a row of named images (pipeline steps) with outlined masks;
- :func:`save_figure` / :func:`figure_to_png_bytes` -- write or encode a figure;
- :func:`cluster_figure` -- image, cluster map and clusters in feature space;
- :func:`training_labels_figure`, :func:`feature_importance_figure`,
  :func:`feature_selection_figure`, :func:`prediction_figure` -- a trained pixel classifier:
  its training strokes, feature importances, feature-selection curve, and a prediction with
  its uncertainty;
- :func:`objects_figure` / :func:`robustness_figure` -- object outlines and numbers; the
  histogram of a method's scores over simulated realizations;
- :func:`region_overlay_figure` -- superpixel or quad-tree boundaries, region means, classes;
- :func:`spectra_figure` -- average image, centroid spectra, cluster map and centroid
  correlation of a spectral (time-of-flight) clustering;
- :func:`threshold_methods_figure` -- threshold methods side by side with the histogram;
- :func:`training_curves_figure` -- training and validation loss, validation Dice and the
  best epoch of a network's training;
- :func:`write_html_report` -- headings, text, figures, thumbnail grids and (sortable)
  tables in one HTML page;
- :func:`write_batch_report` -- the report of a batch run (``niseg report RUN_DIR``): recipe,
  versions, thumbnails with overlays, sortable measurements, histograms, failures and, with
  truth, confusion matrix and ROC curve.
"""

from niseg.report._batch_report import write_batch_report
from niseg.report._classify_figures import (
    feature_importance_figure,
    feature_selection_figure,
    prediction_figure,
    training_labels_figure,
)
from niseg.report._cluster_figures import cluster_figure
from niseg.report._figures import (
    figure_to_png_bytes,
    overview_figure,
    panels_figure,
    save_figure,
)
from niseg.report._html import write_html_report
from niseg.report._objects_figures import objects_figure, robustness_figure
from niseg.report._region_figures import region_overlay_figure
from niseg.report._spectra_figures import spectra_figure
from niseg.report._threshold_figures import threshold_methods_figure
from niseg.report._training_figures import training_curves_figure

__all__ = [
    "cluster_figure",
    "feature_importance_figure",
    "feature_selection_figure",
    "figure_to_png_bytes",
    "objects_figure",
    "overview_figure",
    "panels_figure",
    "prediction_figure",
    "region_overlay_figure",
    "robustness_figure",
    "save_figure",
    "spectra_figure",
    "threshold_methods_figure",
    "training_curves_figure",
    "training_labels_figure",
    "write_batch_report",
    "write_html_report",
]
