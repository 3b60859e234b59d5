import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import niseg.io as nio
from niseg.io import (
    MetadataLossWarning,
    expand_paths,
    format_for_path,
    lossless_dtype_for,
    natural_sort_key,
    read_image,
    rescale_to_dtype,
    supported_formats,
    write_image,
)
from niseg.io._formats import formats_markdown_table

DOCS = Path(__file__).parents[2] / "docs" / "io.md"
EXTENSION = {
    "tiff": ".tif",
    "png": ".png",
    "jpeg": ".jpg",
    "fits": ".fits",
    "npy": ".npy",
    "hdf5": ".h5",
    "zarr": ".zarr",
}


def test_public_api_is_listed():
    for name in [
        "read_image",
        "write_image",
        "read_nxtomo",
        "natural_sort_key",
        "expand_paths",
        "supported_formats",
        "format_for_path",
        "lossless_dtype_for",
        "rescale_to_dtype",
        "MetadataLossWarning",
        "PrecisionLossWarning",
        "atomic_output",
        "check_output_path",
    ]:
        assert name in nio.__all__ and hasattr(nio, name)


@pytest.mark.parametrize(
    "fmt,dtype",
    [(fmt, dt) for fmt, rec in supported_formats().items() for dt in rec["dtypes"]],
)
def test_every_claimed_exact_dtype_round_trips(tmp_path, fmt, dtype):
    values = np.array([[0, 1, 2], [3, 100, 7]])
    image = (
        (values + 1j * values).astype(dtype)
        if np.dtype(dtype).kind == "c"
        else values.astype(dtype)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_image(tmp_path / f"a{EXTENSION[fmt]}", image)
    back, meta = read_image(tmp_path / f"a{EXTENSION[fmt]}")
    assert back.dtype == image.dtype
    np.testing.assert_array_equal(back, image)
    assert meta["axes"] == "yx"


def test_docs_table_matches_supported_formats():
    text = DOCS.read_text(encoding="utf-8")
    assert formats_markdown_table() in text


def test_docs_table_names_every_format_and_dtype():
    rows = [
        line
        for line in DOCS.read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and "`." in line
    ]
    assert len(rows) == len(supported_formats())
    for row, rec in zip(rows, supported_formats().values()):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == rec["name"]
        assert cells[1].split() == [f"`{e}`" for e in rec["extensions"]]
        assert cells[7] == (", ".join(rec["dtypes"]) or "none (lossy)")


def test_format_for_path_and_unknown_extension():
    assert format_for_path("a.TIFF") == "tiff"
    assert format_for_path("b.jpeg") == "jpeg"
    assert format_for_path("c.nx5::/x") == "hdf5"
    assert format_for_path("d.zarr") == "zarr"
    assert format_for_path("e.fit.gz") == "fits"
    with pytest.raises(ValueError, match=r"'f\.bmp' has an unknown image format extension \.bmp"):
        format_for_path("f.bmp")


def test_lossless_dtype_for():
    assert lossless_dtype_for("tiff", np.float64)
    assert lossless_dtype_for("png", bool)
    assert not lossless_dtype_for("png", np.int16)
    assert not lossless_dtype_for("fits", np.float16)
    assert not lossless_dtype_for("jpeg", np.uint8)
    with pytest.raises(ValueError, match="fmt must be one of"):
        lossless_dtype_for("bmp", np.uint8)


def test_supported_formats_is_a_copy():
    formats = supported_formats()
    formats["png"]["dtypes"].append("float32")
    assert "float32" not in supported_formats()["png"]["dtypes"]


def test_natural_sort_key():
    names = ["img10.tif", "img2.tif", "img1.tif", "IMG3.tif", "img02.tif"]
    assert sorted(names, key=natural_sort_key) == [
        "img1.tif",
        "img02.tif",
        "img2.tif",
        "IMG3.tif",
        "img10.tif",
    ]


def test_expand_paths_file_folder_glob_and_list(tmp_path):
    for name in ["s10.png", "s9.png", ".hidden.png", "notes.md"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "vol.zarr").mkdir()
    assert [p.name for p in expand_paths(tmp_path)] == ["s9.png", "s10.png", "vol.zarr"]
    assert [p.name for p in expand_paths(str(tmp_path / "s*.png"))] == ["s9.png", "s10.png"]
    assert expand_paths(tmp_path / "s9.png") == [tmp_path / "s9.png"]
    assert [p.name for p in expand_paths([tmp_path / "s10.png", tmp_path / "s9.png"])] == [
        "s10.png",
        "s9.png",
    ]
    with pytest.raises(ValueError, match=r"pattern '.*\*\.tif' matches no image files"):
        expand_paths(str(tmp_path / "*.tif"))
    with pytest.raises(ValueError, match=r"cannot read '.*missing\.png': the file does not exist"):
        expand_paths(tmp_path / "missing.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"folder '.*empty' holds no image files"):
        expand_paths(empty)


def test_missing_file_and_unknown_extension_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"cannot read '.*nothere\.tif': the file does not exist"):
        read_image(tmp_path / "nothere.tif")
    (tmp_path / "x.abc").write_bytes(b"123")
    with pytest.raises(ValueError, match=r"cannot read '.*x\.abc' has an unknown image format"):
        read_image(tmp_path / "x.abc")
    with pytest.raises(ValueError, match=r"'.*y\.abc' has an unknown image format"):
        write_image(tmp_path / "y.abc", np.zeros((2, 2)))


@pytest.mark.parametrize("name", ["bad.tif", "bad.fits", "bad.h5", "bad.png", "bad.jpg", "bad.npy"])
def test_garbage_bytes_give_one_value_error_naming_the_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not an image \x00\x01\x02" * 20)
    with pytest.raises(ValueError, match=f"cannot read '.*{re.escape(name)}'"):
        read_image(tmp_path / name)


def test_selector_only_for_hdf5_and_zarr(tmp_path):
    write_image(tmp_path / "a.tif", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="only HDF5 and Zarr paths take a '::' selector"):
        read_image(str(tmp_path / "a.tif") + "::/x")


def test_wrong_axes_are_refused(tmp_path):
    write_image(tmp_path / "a.tif", np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(ValueError, match="axes 'yx' has 2 letters but the image has 3 dimensions"):
        read_image(tmp_path / "a.tif", axes="yx")
    with pytest.raises(ValueError, match=r"axes 'qyx' has letter\(s\) q"):
        read_image(tmp_path / "a.tif", axes="qyx")
    with pytest.raises(ValueError, match="axes 'yyx' repeats a letter"):
        read_image(tmp_path / "a.tif", axes="yyx")
    with pytest.raises(ValueError, match="metadata axes 'yx' has 2 letters"):
        write_image(tmp_path / "b.tif", np.zeros((2, 3, 4)), {"axes": "yx"})


def test_axes_override_recomputes_pixel_size(tmp_path):
    write_image(
        tmp_path / "v.tif",
        np.zeros((2, 3, 4), np.uint16),
        {"axes": "zyx", "pixel_size": (5.0, 1.0, 2.0), "unit": "um"},
    )
    _, meta = read_image(tmp_path / "v.tif", axes="tyx")
    assert meta["axes"] == "tyx" and meta["pixel_size"] == (1.0, 2.0)


def test_pixel_size_must_match_spatial_axes(tmp_path):
    with pytest.raises(
        ValueError, match=r"pixel_size has 2 values but axes 'zyx' has 3 spatial axes"
    ):
        write_image(tmp_path / "a.tif", np.zeros((2, 3, 4)), {"axes": "zyx", "pixel_size": (1, 1)})
    assert not (tmp_path / "a.tif").exists()


def test_existing_output_is_refused(tmp_path):
    write_image(tmp_path / "a.tif", np.zeros((2, 2), np.uint8))
    with pytest.raises(FileExistsError, match="already exists"):
        write_image(tmp_path / "a.tif", np.ones((2, 2), np.uint8))
    back, _ = read_image(tmp_path / "a.tif")
    assert back.sum() == 0
    write_image(tmp_path / "a.tif", np.ones((2, 2), np.uint8), overwrite=True)
    assert read_image(tmp_path / "a.tif")[0].sum() == 4


def _partial_then_fail(tmp_path):
    def fail(*args, **kwargs):
        partial = [p for p in tmp_path.iterdir() if ".partial" in p.name]
        assert partial, "the writer should already have started its temporary output"
        raise OSError("disk full")

    return fail


def _bytes_then_fail(tmp_path):
    def fail(target, *args, **kwargs):
        if hasattr(target, "write"):
            target.write(b"half written")
        else:
            Path(target).write_bytes(b"half written")
        return _partial_then_fail(tmp_path)()

    return fail


@pytest.mark.parametrize(
    "fmt,owner,attr,make",
    [
        ("tiff", "tifffile", "imwrite", _bytes_then_fail),
        ("npy", "numpy", "save", _bytes_then_fail),
        ("fits", "astropy.io.fits.PrimaryHDU", "writeto", None),
        ("hdf5", "h5py.Dataset", "__setitem__", _partial_then_fail),
        ("zarr", "zarr.Array", "__setitem__", _partial_then_fail),
    ],
)
@pytest.mark.filterwarnings("ignore::niseg.io.MetadataLossWarning")
def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch, fmt, owner, attr, make):
    import importlib

    if make is None:  # a method: the first argument is the HDU, the second the path

        def fail(self, target, *args, **kwargs):
            return _bytes_then_fail(tmp_path)(target)
    else:
        fail = make(tmp_path)
    module_name, _, last = owner.rpartition(".")
    if last[0].isupper():  # a class inside a module
        target = getattr(importlib.import_module(module_name), last)
    else:
        target = importlib.import_module(owner)
    monkeypatch.setattr(target, attr, fail)
    with pytest.raises(OSError, match="disk full"):
        write_image(tmp_path / f"a{EXTENSION[fmt]}", np.zeros((3, 4), np.float32), {"note": "x"})
    assert list(tmp_path.iterdir()) == []


def test_write_never_modifies_the_input(tmp_path):
    image = np.arange(12, dtype=">u2").reshape(3, 4)
    before = image.copy()
    write_image(tmp_path / "a.png", image)
    write_image(tmp_path / "a.zarr", image)
    np.testing.assert_array_equal(image, before)
    assert image.dtype == np.dtype(">u2")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png")[0], before)


def test_metadata_loss_ignores_provenance_keys(tmp_path):
    meta = {"source": "/x.tif", "axes_guessed": False, "header": {"A": 1}, "dataset": "/d"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_image(tmp_path / "a.png", np.zeros((2, 2), np.uint8), meta)


def test_metadata_with_unstorable_values_is_refused(tmp_path):
    with pytest.raises(TypeError, match="metadata 'thing' holds a set"):
        write_image(tmp_path / "a.tif", np.zeros((2, 2)), {"thing": {1, 2}})
    with pytest.warns(MetadataLossWarning):
        write_image(tmp_path / "b.npy", np.zeros((2, 2)), {"exposure_time": 1})


def test_non_numeric_arrays_are_refused(tmp_path):
    with pytest.raises(TypeError, match="array must hold numbers"):
        write_image(tmp_path / "a.tif", np.array([["a", "b"]]))


def test_read_list_of_files_as_stack(tmp_path):
    paths = []
    for i in range(3):
        paths.append(write_image(tmp_path / f"p{i}.npy", np.full((2, 3), i, np.int16)))
    stack, meta = read_image(list(reversed(paths)))
    assert stack[:, 0, 0].tolist() == [2, 1, 0]
    assert meta["axes"] == "zyx"


def test_mixed_format_folder_is_refused(tmp_path):
    write_image(tmp_path / "a.tif", np.zeros((2, 2), np.uint8))
    write_image(tmp_path / "b.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match=r"several formats \(png, tiff\)"):
        read_image(tmp_path)


def test_rescale_to_dtype_maps_finite_range_and_handles_nan():
    data = np.array([[-1.0, 0.0], [np.nan, 3.0], [np.inf, -np.inf]], np.float32)
    out = rescale_to_dtype(data, np.uint16)
    assert out.dtype == np.uint16
    assert out.tolist() == [[0, 16384], [0, 65535], [65535, 0]]
    assert np.isnan(data[1, 0])  # input untouched
    floats = rescale_to_dtype(data, np.float32)
    assert floats[0, 0] == 0.0 and floats[1, 1] == 1.0 and np.isnan(floats[1, 0])
    assert rescale_to_dtype(np.full((2, 2), 5.0), np.uint8).tolist() == [[0, 0], [0, 0]]
    signed = rescale_to_dtype(np.array([0, 1]), np.int8)
    assert signed.tolist() == [-128, 127]
    wide = rescale_to_dtype(np.array([0.0, 1.0]), np.int64)
    assert wide[0] == np.iinfo(np.int64).min and wide[1] > 0
    with pytest.raises(TypeError, match="dtype must be an integer or floating-point dtype"):
        rescale_to_dtype(data, bool)
