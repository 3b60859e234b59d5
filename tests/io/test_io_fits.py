import numpy as np
import pytest
from astropy.io import fits

from niseg.io import MetadataLossWarning, read_image, write_image

FITS_DTYPES = [
    "uint8",
    "int8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float32",
    "float64",
]


@pytest.mark.parametrize("dtype", FITS_DTYPES)
def test_fits_round_trip_is_exact_and_native_endian(tmp_path, dtype):
    image = (np.random.default_rng(0).normal(size=(6, 7)) * 50 + 60).astype(dtype)
    write_image(tmp_path / "a.fits", image)
    back, meta = read_image(tmp_path / "a.fits")
    assert back.dtype == np.dtype(dtype)
    assert back.dtype.byteorder in ("=", "|")
    np.testing.assert_array_equal(back, image)
    assert meta["axes"] == "yx"


def test_foreign_fits_with_exptime_and_bzero_uint16(tmp_path):
    data = np.array([[0, 1000], [40000, 65535]], np.uint16)
    hdu = fits.PrimaryHDU(data)
    hdu.header["EXPTIME"] = 12.5
    hdu.header["OBJECT"] = "snail shell"
    hdu.header["GAIN"] = 1.7
    hdu.header["COMMENT"] = "ignored"
    hdu.writeto(tmp_path / "cam.fits")
    with fits.open(tmp_path / "cam.fits") as hdul:
        assert hdul[0].header["BZERO"] == 32768
    back, meta = read_image(tmp_path / "cam.fits")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, data)
    assert meta["exposure_time"] == 12.5
    assert meta["header"] == {"OBJECT": "snail shell", "GAIN": 1.7}


def test_big_endian_float_data_comes_back_native(tmp_path):
    data = np.linspace(0, 1, 12, dtype=">f4").reshape(3, 4)
    fits.PrimaryHDU(data).writeto(tmp_path / "be.fits")
    back, _ = read_image(tmp_path / "be.fits")
    assert back.dtype == np.dtype("float32") and back.dtype.isnative
    np.testing.assert_array_equal(back, data.astype(np.float32))


def test_first_image_hdu_is_read_when_primary_is_empty(tmp_path):
    data = np.arange(6, dtype=np.int16).reshape(2, 3)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data)]).writeto(tmp_path / "ext.fits")
    back, _ = read_image(tmp_path / "ext.fits")
    np.testing.assert_array_equal(back, data)


def test_fits_keeps_axes_pixel_size_exposure_classes_and_scalars(tmp_path):
    cube = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    meta_in = {
        "axes": "tyx",
        "pixel_size": (0.055, 0.05),
        "unit": "mm",
        "exposure_time": 0.5,
        "classes": ["background", "a rather long class name that needs more than one card"],
        "sample_name": "Fe sample",
        "temperature": 293.5,
        "header": {"TELESCOP": "ICON", "INSTRUME": "MCP"},
    }
    write_image(tmp_path / "c.fits", cube, meta_in)
    with fits.open(tmp_path / "c.fits") as hdul:
        header = hdul[0].header
        assert header["EXPTIME"] == 0.5
        assert header["PIXSIZE1"] == 0.05 and header["PIXSIZE2"] == 0.055
        assert header["PIXUNIT"] == "mm" and header["NISEGAX"] == "tyx"
    back, meta = read_image(tmp_path / "c.fits")
    np.testing.assert_array_equal(back, cube)
    assert meta["axes"] == "tyx" and meta["axes_guessed"] is False
    assert meta["pixel_size"] == (0.055, 0.05) and meta["unit"] == "mm"
    assert meta["exposure_time"] == 0.5
    assert meta["classes"] == meta_in["classes"]
    assert meta["sample_name"] == "Fe sample" and meta["temperature"] == 293.5
    assert meta["header"] == {"TELESCOP": "ICON", "INSTRUME": "MCP"}


def test_fits_drops_non_scalar_keys_with_a_warning(tmp_path):
    with pytest.warns(MetadataLossWarning, match="does not keep metadata settings"):
        write_image(tmp_path / "a.fits", np.zeros((2, 2), np.uint8), {"settings": {"a": 1}, "n": 3})
    _, meta = read_image(tmp_path / "a.fits")
    assert meta["n"] == 3 and "settings" not in meta


def test_fits_folder_is_a_stack(tmp_path):
    for i in (10, 2, 1):
        hdu = fits.PrimaryHDU(np.full((3, 4), i, np.uint16))
        hdu.header["EXPTIME"] = 4.0
        hdu.writeto(tmp_path / f"radiograph_{i}.fits")
    stack, meta = read_image(tmp_path)
    assert stack.dtype == np.uint16 and stack.shape == (3, 3, 4)
    assert stack[:, 0, 0].tolist() == [1, 2, 10]
    assert meta["axes"] == "zyx" and meta["axes_guessed"] is True
    assert meta["exposure_time"] == 4.0
    lazy, _ = read_image(str(tmp_path / "radiograph_*.fits"), lazy=True, axes="tyx")
    np.testing.assert_array_equal(lazy.compute(), stack)


def test_fits_folder_with_odd_shape_names_the_file(tmp_path):
    fits.PrimaryHDU(np.zeros((3, 4), np.int16)).writeto(tmp_path / "a1.fits")
    fits.PrimaryHDU(np.zeros((3, 5), np.int16)).writeto(tmp_path / "a2.fits")
    with pytest.raises(ValueError, match=r"cannot stack '.*a2\.fits'"):
        read_image(tmp_path)
    with pytest.raises(ValueError, match=r"cannot stack '.*a2\.fits'"):
        read_image(tmp_path, lazy=True)


def test_gzipped_fits_round_trip(tmp_path):
    data = np.arange(12, dtype=np.int32).reshape(3, 4)
    write_image(tmp_path / "a.fits.gz", data, {"exposure_time": 1.0})
    back, meta = read_image(tmp_path / "a.fits.gz")
    np.testing.assert_array_equal(back, data)
    assert meta["exposure_time"] == 1.0


def test_garbage_and_truncated_fits_are_clear_errors(tmp_path):
    (tmp_path / "bad.fits").write_bytes(b"not a fits file at all" * 10)
    with pytest.raises(
        ValueError, match=r"cannot read '.*bad\.fits': the file is truncated or not a valid FITS"
    ):
        read_image(tmp_path / "bad.fits")
    write_image(tmp_path / "full.fits", np.zeros((100, 100), np.float64))
    raw = (tmp_path / "full.fits").read_bytes()
    (tmp_path / "cut.fits").write_bytes(raw[:10000])
    with pytest.raises(ValueError, match=r"cannot read '.*cut\.fits': the file is truncated"):
        read_image(tmp_path / "cut.fits")


def test_fits_write_leaves_the_input_untouched(tmp_path):
    data = np.array([[1, 2], [3, 65535]], np.uint16)
    before = data.copy()
    write_image(tmp_path / "u.fits", data)
    np.testing.assert_array_equal(data, before)
    assert data.dtype == np.uint16 and data.flags.writeable
