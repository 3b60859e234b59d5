import numpy as np
import pytest

from niseg.io import read_image, write_image

# Real measurements in ../shared/data, through the `shared_data` fixture of tests/conftest.py.
pytestmark = pytest.mark.slow


def test_imagej_shale_slice_without_calibration(shared_data):
    image, meta = read_image(shared_data / "threshold_cases" / "shale-slice.tiff")
    assert image.shape == (250, 250) and image.dtype == np.uint16
    assert meta["axes"] == "yx"
    # Saved by ImageJ with the default 72 dpi inch resolution: no physical pixel size.
    assert "pixel_size" not in meta


def test_palette_png_with_equal_channels_reads_as_grey(shared_data):
    image, meta = read_image(shared_data / "threshold_cases" / "class_art_in.png")
    assert image.shape == (256, 256) and image.dtype == np.uint8
    assert meta["axes"] == "yx"


def test_em_image_and_mask(shared_data):
    image, _ = read_image(shared_data / "em_mitochondria" / "em_image.png")
    mask, _ = read_image(shared_data / "em_mitochondria" / "em_image_seg.png")
    assert image.shape == mask.shape == (768, 1024)
    assert set(np.unique(mask).tolist()) == {0, 255}
    assert 0.07 < np.mean(mask > 0) < 0.10


@pytest.mark.parametrize("ext", [".tif", ".fits", ".h5", ".zarr", ".npy", ".png"])
def test_neutron_shell_round_trips_through_every_lossless_format(shared_data, tmp_path, ext):
    shell, meta = read_image(shared_data / "neutron_xray_shell" / "shellN.npy")
    assert shell.shape == (600, 650) and shell.dtype == np.uint16
    write_image(tmp_path / f"shell{ext}", shell, {"axes": meta["axes"]})
    back, back_meta = read_image(tmp_path / f"shell{ext}")
    np.testing.assert_array_equal(back, shell)
    assert back_meta["axes"] == "yx"


def test_jpeg_cell_colony(shared_data):
    image, meta = read_image(shared_data / "threshold_cases" / "Cell_Colony.jpg")
    assert image.shape == (408, 406) and image.dtype == np.uint8 and meta["axes"] == "yx"
