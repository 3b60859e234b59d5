"""Objects: connected components, watershed split of touching objects, contours, measurements.

:func:`label_objects` turns a binary or multi-class mask into numbered objects (2D or 3D),
optionally splitting touching objects with a watershed of the distance transform.
:func:`object_contours` gives the outline of each 2D object. :func:`measure_objects` measures
every object (area or volume, equivalent diameter, centroid, bounding box, mean intensity,
orientation in 2D), in physical units when the pixel size is known, and
:func:`class_totals` sums them per class. :func:`write_table_csv` writes such a table.

Object label images are int32: 0 = background, 1..N = objects.
"""

from ._label import label_objects, object_contours, split_touching
from ._measure import class_totals, measure_objects, write_table_csv

__all__ = [
    "class_totals",
    "label_objects",
    "measure_objects",
    "object_contours",
    "split_touching",
    "write_table_csv",
]
