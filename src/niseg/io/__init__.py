"""Reading and writing images with their axes and metadata.

:func:`read_image` returns ``(array, metadata)`` for TIFF (and stacks of slices), PNG/JPEG,
FITS, NPY, HDF5/NeXus and Zarr; ``metadata["axes"]`` always names the axes (``"yx"``,
``"zyx"``, ``"tyx"``, ``"yxc"``, ...). :func:`write_image` writes atomically, never rescales,
and warns when a format drops metadata. :func:`supported_formats` says which format keeps
what. :func:`read_labels` reads training labels drawn in napari or ilastik.
"""

from ._api import read_image, read_nxtomo, write_image
from ._atomic import atomic_output, check_output_path, to_jsonable, write_json
from ._formats import (
    MetadataLossWarning,
    PrecisionLossWarning,
    format_for_path,
    lossless_dtype_for,
    supported_formats,
)
from ._labels import read_labels
from ._paths import expand_paths, natural_sort_key
from ._rescale import rescale_to_dtype

__all__ = [
    "MetadataLossWarning",
    "PrecisionLossWarning",
    "atomic_output",
    "check_output_path",
    "expand_paths",
    "format_for_path",
    "lossless_dtype_for",
    "natural_sort_key",
    "read_image",
    "read_labels",
    "read_nxtomo",
    "rescale_to_dtype",
    "supported_formats",
    "to_jsonable",
    "write_image",
    "write_json",
]
