import warnings

import numpy as np
import pytest
from PIL import Image

from niseg.io import MetadataLossWarning, PrecisionLossWarning, read_image, write_image


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_grey_png_round_trip(tmp_path, dtype):
    image = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, (9, 11)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_image(tmp_path / "g.png", image)
    back, meta = read_image(tmp_path / "g.png")
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, image)
    assert meta["axes"] == "yx" and meta["axes_guessed"] is False


def test_rgb_png_reads_yxc(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (5, 6, 3), dtype=np.uint8)
    write_image(tmp_path / "c.png", rgb, {"axes": "yxc"})
    back, meta = read_image(tmp_path / "c.png")
    np.testing.assert_array_equal(back, rgb)
    assert meta["axes"] == "yxc"


def test_rgba_png_round_trip(tmp_path):
    rgba = np.random.default_rng(2).integers(0, 255, (5, 6, 4), dtype=np.uint8)
    write_image(tmp_path / "c.png", rgba, {"axes": "yxc"})
    back, meta = read_image(tmp_path / "c.png")
    np.testing.assert_array_equal(back, rgba)
    assert meta["axes"] == "yxc"


def test_equal_channel_rgb_png_reads_as_grey(tmp_path):
    grey = np.random.default_rng(3).integers(0, 255, (5, 6), dtype=np.uint8)
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "g.png")
    back, meta = read_image(tmp_path / "g.png")
    assert meta["axes"] == "yx"
    np.testing.assert_array_equal(back, grey)


def test_palette_png_gives_its_colours(tmp_path):
    image = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.save(tmp_path / "p.png")
    back, meta = read_image(tmp_path / "p.png")
    assert meta["axes"] == "yxc"
    assert back[0, 1].tolist() == [255, 0, 0]


def test_png_refuses_float32_and_suggests_rescaling(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"PNG stores only uint8 and uint16 images, not float32; convert with "
        r"rescale_to_dtype first \(niseg convert --rescale\)",
    ):
        write_image(tmp_path / "f.png", np.zeros((3, 4), np.float32))
    assert not list(tmp_path.iterdir())


def test_png_refuses_a_stack(tmp_path):
    with pytest.raises(ValueError, match=r"PNG stores one 2D grey image.*axes 'zyx'"):
        write_image(tmp_path / "s.png", np.zeros((3, 4, 5), np.uint8))
    assert not list(tmp_path.iterdir())


def test_png_warns_about_dropped_metadata(tmp_path):
    meta = {"pixel_size": (0.5, 0.5), "unit": "um", "exposure_time": 3.0, "source": "x.tif"}
    with pytest.warns(
        MetadataLossWarning, match=r"does not keep metadata pixel_size, unit, exposure_time"
    ):
        write_image(tmp_path / "m.png", np.zeros((3, 4), np.uint8), meta)
    assert (tmp_path / "m.png").exists()


def test_bool_is_written_as_uint8_zero_one(tmp_path):
    mask = np.array([[True, False], [False, True]])
    write_image(tmp_path / "mask.png", mask)
    back, _ = read_image(tmp_path / "mask.png")
    assert back.dtype == np.uint8 and back.tolist() == [[1, 0], [0, 1]]
    assert mask.dtype == np.bool_  # the input is untouched


def test_jpeg_is_uint8_only_and_always_warns(tmp_path):
    image = np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))
    with pytest.warns(PrecisionLossWarning, match="lossy"):
        write_image(tmp_path / "a.jpg", image)
    back, meta = read_image(tmp_path / "a.jpg")
    assert back.dtype == np.uint8 and back.shape == image.shape
    assert np.abs(back.astype(int) - image).max() <= 8
    assert meta["axes"] == "yx"
    with pytest.raises(ValueError, match="JPEG stores only uint8 images, not uint16"):
        write_image(tmp_path / "b.jpg", image.astype(np.uint16))


def test_garbage_png_is_a_clear_error(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(
        ValueError, match=r"cannot read '.*bad\.png': the file is truncated or not a valid PNG"
    ):
        read_image(tmp_path / "bad.png")


def test_lazy_png_loads_then_wraps(tmp_path):
    import dask.array as da

    write_image(tmp_path / "a.png", np.eye(4, dtype=np.uint8))
    lazy, _ = read_image(tmp_path / "a.png", lazy=True)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), np.eye(4, dtype=np.uint8))


def test_png_folder_stack(tmp_path):
    for i in (3, 1, 20):
        write_image(tmp_path / f"f{i}.png", np.full((2, 3), i, np.uint8))
    stack, meta = read_image(tmp_path, axes="tyx")
    assert stack[:, 0, 0].tolist() == [1, 3, 20]
    assert meta["axes"] == "tyx"


def test_rgb_array_without_metadata_is_written_as_colour(tmp_path):
    rgb = np.random.default_rng(4).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_image(tmp_path / "c.png", rgb)
    back, meta = read_image(tmp_path / "c.png")
    np.testing.assert_array_equal(back, rgb)
    assert meta["axes"] == "yxc"


def test_png_warns_when_recorded_axes_are_lost(tmp_path):
    with pytest.warns(MetadataLossWarning, match="metadata axes"):
        write_image(tmp_path / "t.png", np.zeros((3, 4), np.uint8), {"axes": "ty"})
