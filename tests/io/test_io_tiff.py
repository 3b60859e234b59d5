import json

import dask.array as da
import numpy as np
import pytest
import tifffile

from niseg.io import read_image, write_image

DTYPES = [
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "uint64",
    "int64",
    "float16",
    "float32",
    "float64",
    "complex64",
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiff_round_trip_is_exact_for_every_dtype(tmp_path, dtype):
    rng = np.random.default_rng(0)
    image = (rng.normal(size=(7, 9)) * 100).astype(dtype)
    out = write_image(tmp_path / "a.tif", image)
    back, meta = read_image(out)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, image)
    assert meta["axes"] == "yx" and meta["axes_guessed"] is False
    assert meta["source"] == str(out.resolve())


@pytest.mark.parametrize("dtype", ["uint16", "float64"])  # ImageJ form and shaped form
def test_tiff_keeps_all_niseg_metadata(tmp_path, dtype):
    image = np.arange(2 * 3 * 4, dtype=dtype).reshape(2, 3, 4)
    meta_in = {
        "axes": "zyx",
        "pixel_size": (2.5, 0.65, 0.65),
        "unit": "µm",
        "exposure_time": 1.25,
        "classes": ["air", "rock"],
        "sample": "shale #3",
        "settings": {"sigma": [1, 2], "ok": True},
        "source": "/somewhere/else.tif",
    }
    write_image(tmp_path / "v.tif", image, meta_in)
    back, meta = read_image(tmp_path / "v.tif")
    np.testing.assert_array_equal(back, image)
    assert meta["axes"] == "zyx" and meta["axes_guessed"] is False
    assert meta["pixel_size"] == (2.5, 0.65, 0.65)
    assert meta["unit"] == "um"
    assert meta["exposure_time"] == 1.25
    assert meta["classes"] == ["air", "rock"]
    assert meta["sample"] == "shale #3"
    assert meta["settings"] == {"sigma": [1, 2], "ok": True}
    assert meta["source"] == str((tmp_path / "v.tif").resolve())


def test_imagej_tiff_gives_fiji_the_pixel_size_in_microns(tmp_path):
    volume = np.zeros((3, 8, 10), np.float32)
    write_image(
        tmp_path / "v.tif", volume, {"axes": "zyx", "pixel_size": (4.0, 0.5, 0.25), "unit": "um"}
    )
    with tifffile.TiffFile(tmp_path / "v.tif") as tif:
        assert tif.is_imagej
        ij = tif.imagej_metadata
        assert ij["unit"] == "micron"
        assert ij["spacing"] == pytest.approx(4.0)
        assert ij["slices"] == 3
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(0.25)
        num, den = tif.pages[0].tags["YResolution"].value
        assert den / num == pytest.approx(0.5)
        assert tif.series[0].axes == "ZYX"


def test_shaped_tiff_writes_standard_resolution_in_centimetres(tmp_path):
    image = np.zeros((8, 10), np.float64)  # float64 is not an ImageJ type
    write_image(tmp_path / "a.tif", image, {"pixel_size": (2.0, 2.0), "unit": "um"})
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        assert not tif.is_imagej
        assert int(tif.pages[0].tags["ResolutionUnit"].value) == 3
        num, den = tif.pages[0].tags["XResolution"].value
        assert num / den == pytest.approx(5000.0)  # pixels per cm


def test_foreign_imagej_file_pixel_size_and_axes(tmp_path):
    data = np.zeros((2, 3, 6, 7), np.uint16)
    tifffile.imwrite(
        tmp_path / "fiji.tif",
        data,
        imagej=True,
        resolution=(2.0, 4.0),
        metadata={"axes": "TZYX", "spacing": 3.0, "unit": "\\u00B5m"},
    )
    _, meta = read_image(tmp_path / "fiji.tif")
    assert meta["axes"] == "tzyx" and meta["axes_guessed"] is False
    assert meta["pixel_size"] == pytest.approx((3.0, 0.25, 0.5))
    assert meta["unit"] == "um"


def test_plain_multipage_tiff_is_zyx_guessed_and_axes_override(tmp_path):
    stack = np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6)
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tw:
        for page in stack:
            tw.write(page, photometric="minisblack", metadata=None)
    back, meta = read_image(tmp_path / "pages.tif")
    np.testing.assert_array_equal(back, stack)
    assert meta["axes"] == "zyx" and meta["axes_guessed"] is True
    _, meta = read_image(tmp_path / "pages.tif", axes="tyx")
    assert meta["axes"] == "tyx" and meta["axes_guessed"] is False
    with pytest.raises(ValueError, match="axes 'yx' has 2 letters but the image has 3 dimensions"):
        read_image(tmp_path / "pages.tif", axes="yx")


def test_guessed_axes_stay_guessed_through_a_round_trip(tmp_path):
    write_image(tmp_path / "g.tif", np.zeros((2, 3, 4), np.uint8))
    _, meta = read_image(tmp_path / "g.tif")
    assert meta["axes"] == "zyx" and meta["axes_guessed"] is True


def test_rgb_tiff_is_yxc_and_grey_rgb_collapses(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (6, 7, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb")
    back, meta = read_image(tmp_path / "c.tif")
    assert meta["axes"] == "yxc" and back.shape == (6, 7, 3)
    grey = np.repeat(rgb[..., :1], 3, axis=2)
    tifffile.imwrite(tmp_path / "g.tif", grey, photometric="rgb")
    back, meta = read_image(tmp_path / "g.tif")
    assert meta["axes"] == "yx"
    np.testing.assert_array_equal(back, rgb[..., 0])
    back, meta = read_image(tmp_path / "g.tif", axes="yxc")
    assert back.shape == (6, 7, 3) and meta["axes"] == "yxc"


def test_spectral_cube_axes_and_header_round_trip(tmp_path):
    cube = np.random.default_rng(2).random((5, 6, 11)).astype(np.float32)
    meta_in = {"axes": "yxl", "header": {"instrument": "RADEN"}, "pixel_size": 0.1, "unit": "mm"}
    write_image(tmp_path / "tof.tiff", cube, meta_in)
    back, meta = read_image(tmp_path / "tof.tiff")
    np.testing.assert_array_equal(back, cube)
    assert meta["axes"] == "yxl"
    assert meta["pixel_size"] == (0.1, 0.1)
    assert meta["header"] == {"instrument": "RADEN"}


def test_tiff_slices_folder_and_glob_in_natural_order(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    for i in [1, 2, 10, 3]:
        write_image(
            folder / f"slice{i}.tif",
            np.full((4, 5), i, np.uint16),
            {"pixel_size": (0.5, 0.5), "unit": "um", "exposure_time": 2.0},
        )
    (folder / "readme.txt").write_text("not an image")
    stack, meta = read_image(folder)
    assert stack.shape == (4, 4, 5)
    assert stack[:, 0, 0].tolist() == [1, 2, 3, 10]
    assert meta["axes"] == "zyx" and meta["axes_guessed"] is True
    assert meta["source"] == str(folder.resolve())
    # The slice spacing is unknown: the in-plane size is kept apart, not guessed.
    assert "pixel_size" not in meta
    assert meta["slice_pixel_size"] == (0.5, 0.5) and meta["unit"] == "um"
    assert meta["exposure_time"] == 2.0
    stack, meta = read_image(str(folder / "slice1*.tif"), axes="tyx")
    assert stack[:, 0, 0].tolist() == [1, 10]
    assert meta["axes"] == "tyx" and meta["pixel_size"] == (0.5, 0.5)


def test_slices_of_different_shapes_name_the_odd_file(tmp_path):
    for i, shape in enumerate([(4, 5), (4, 5), (4, 6), (4, 7)]):
        write_image(tmp_path / f"s{i}.tif", np.zeros(shape, np.uint8))
    with pytest.raises(ValueError, match=r"s2\.tif.*shape \(4, 6\).*s0\.tif.*shape \(4, 5\)"):
        read_image(tmp_path)
    with pytest.raises(ValueError, match=r"s2\.tif"):
        read_image(tmp_path, lazy=True)


def test_slices_of_different_dtypes_are_refused(tmp_path):
    write_image(tmp_path / "s1.tif", np.zeros((4, 5), np.uint8))
    write_image(tmp_path / "s2.tif", np.zeros((4, 5), np.uint16))
    with pytest.raises(ValueError, match=r"cannot stack '.*s2\.tif'.*dtype uint16"):
        read_image(tmp_path)


def test_lazy_tiff_reads_nothing_until_computed(tmp_path):
    stack = np.arange(3 * 20 * 30, dtype=np.uint16).reshape(3, 20, 30)
    write_image(tmp_path / "s.tif", stack)
    lazy, meta = read_image(tmp_path / "s.tif", lazy=True)
    assert isinstance(lazy, da.Array)
    assert lazy.chunks[0] == (1, 1, 1)
    assert meta["axes"] == "zyx"
    np.testing.assert_array_equal(lazy.compute(), stack)
    np.testing.assert_array_equal(lazy[1, 5:9, 2:4].compute(), stack[1, 5:9, 2:4])


def test_lazy_folder_has_one_chunk_per_slice_and_reads_at_compute(tmp_path):
    for i in range(3):
        write_image(tmp_path / f"im{i}.tif", np.full((4, 5), i, np.float32))
    lazy, _ = read_image(tmp_path, lazy=True)
    assert lazy.chunks == ((1, 1, 1), (4,), (5,))
    # Changing a slice after read_image returns shows the lazy array had not read it yet.
    write_image(tmp_path / "im2.tif", np.full((4, 5), 7, np.float32), overwrite=True)
    assert lazy[:, 0, 0].compute().tolist() == [0.0, 1.0, 7.0]


def test_dask_array_is_written_to_tiff_page_by_page(tmp_path):
    data = da.arange(4 * 6 * 5, dtype=np.uint16, chunks=2 * 6 * 5).reshape(4, 6, 5)
    write_image(tmp_path / "d.tif", data, {"axes": "tyx"})
    back, meta = read_image(tmp_path / "d.tif")
    np.testing.assert_array_equal(back, data.compute())
    assert meta["axes"] == "tyx"


def test_truncated_tiff_is_a_clear_error(tmp_path):
    write_image(tmp_path / "full.tif", np.arange(200 * 300, dtype=np.uint16).reshape(200, 300))
    raw = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "half.tif").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cannot read '.*half\.tif': the file is truncated"):
        read_image(tmp_path / "half.tif")


def test_our_json_lives_in_imagej_description(tmp_path):
    write_image(tmp_path / "a.tif", np.zeros((3, 4), np.uint8), {"classes": ["a", "b"]})
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        stored = json.loads(tif.imagej_metadata["niseg"])
    assert stored["classes"] == ["a", "b"] and stored["axes"] == "yx"


def test_lazy_tiff_file_is_read_at_compute_time_and_pickles(tmp_path):
    import pickle

    write_image(tmp_path / "a.tif", np.zeros((2, 3, 4), np.uint16))
    lazy, _ = read_image(tmp_path / "a.tif", lazy=True)
    write_image(tmp_path / "a.tif", np.full((2, 3, 4), 9, np.uint16), overwrite=True)
    assert int(lazy.sum().compute()) == 9 * 24
    assert int(pickle.loads(pickle.dumps(lazy)).sum().compute()) == 9 * 24


def test_ome_tiff_axes_and_physical_size(tmp_path):
    data = np.zeros((3, 4, 5), np.uint16)
    tifffile.imwrite(
        tmp_path / "a.ome.tif",
        data,
        ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.3, "PhysicalSizeZ": 1.5},
    )
    _, meta = read_image(tmp_path / "a.ome.tif")
    assert meta["axes"] == "zyx" and meta["axes_guessed"] is False
    assert meta["pixel_size"] == pytest.approx((1.5, 0.3, 0.2)) and meta["unit"] == "um"
