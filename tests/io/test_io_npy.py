import pickle

import dask.array as da
import numpy as np
import pytest

from niseg.io import MetadataLossWarning, read_image, write_image


def test_npy_round_trip_2d(tmp_path):
    image = np.random.default_rng(0).random((5, 6)).astype(np.float32)
    write_image(tmp_path / "a.npy", image)
    back, meta = read_image(tmp_path / "a.npy")
    np.testing.assert_array_equal(back, image)
    assert meta["axes"] == "yx" and meta["axes_guessed"] is False


def test_3d_npy_is_zyx_guessed_unless_axes_given(tmp_path):
    np.save(tmp_path / "cube.npy", np.zeros((4, 5, 6), np.uint16))
    _, meta = read_image(tmp_path / "cube.npy")
    assert meta["axes"] == "zyx" and meta["axes_guessed"] is True
    _, meta = read_image(tmp_path / "cube.npy", axes="yxl")
    assert meta["axes"] == "yxl" and meta["axes_guessed"] is False


def test_npy_lazy_is_memory_mapped_and_picklable(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=">i4").reshape(4, 5, 6)
    np.save(tmp_path / "big.npy", data)
    lazy, _ = read_image(tmp_path / "big.npy", lazy=True)
    assert isinstance(lazy, da.Array)
    assert lazy.dtype == np.dtype("int32")
    np.save(tmp_path / "big.npy", data + 1)  # same header: the lazy array reads the new data
    restored = pickle.loads(pickle.dumps(lazy))
    np.testing.assert_array_equal(restored.compute(), data + 1)


def test_object_npy_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(
        ValueError, match=r"cannot read '.*obj\.npy': it holds pickled Python objects"
    ):
        read_image(tmp_path / "obj.npy")


def test_npy_warns_when_it_drops_metadata(tmp_path):
    with pytest.warns(MetadataLossWarning, match=r"does not keep metadata axes, pixel_size"):
        write_image(
            tmp_path / "a.npy", np.zeros((2, 3, 4)), {"axes": "tyx", "pixel_size": (1.0, 1.0)}
        )


def test_garbage_npy_is_a_clear_error(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match=r"cannot read '.*bad\.npy'"):
        read_image(tmp_path / "bad.npy")
