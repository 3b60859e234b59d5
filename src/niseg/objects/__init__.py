"""Objects: connected components, watershed split of touching objects, contours, measurements.

:func:`label_objects` turns a binary or multi-class mask into numbered objects (2D or 3D),
optionally splitting touching objects with a watershed of the distance transform.
:func:`object_contours` gives the outline of each 2D object. :func:`measure_objects` measures
every object (area or volume, equivalent diameter, centroid, bounding box, mean intensity,
orientation in 2D), in physical units when the pixel size is known, and
:func:`class_totals` sums them per class. :func:`write_table_csv` writes such a table.
:func:`postprocess` cleans a (predicted) label image per class: it removes small objects
(:func:`remove_small_regions`), keeps the largest object (:func:`keep_largest_region`) and
fills holes (:func:`fill_class_holes`).

Object label images are int32: 0 = background, 1..N = objects.
"""

from ._label import label_objects, object_contours, split_touching
from ._measure import class_totals, measure_objects, write_table_csv
from ._postprocess import (
    fill_class_holes,
    keep_largest_region,
    postprocess,
    remove_small_regions,
)

__all__ = [
    "class_totals",
    "fill_class_holes",
    "keep_largest_region",
    "label_objects",
    "measure_objects",
    "object_contours",
    "postprocess",
    "remove_small_regions",
    "split_touching",
    "write_table_csv",
]
