"""Tests for niseg.tiling: tile layout and tiled prediction equal to untiled prediction."""

from __future__ import annotations

import dask.array as da
import h5py
import numpy as np
import pytest
import zarr
from scipy import ndimage as ndi

from niseg.threshold import ThresholdSegmenter
from niseg.tiling import Tile, iter_tiles, predict_tiled


def _image(shape, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(0, 1, shape).astype(np.float32)
    # Smooth structures a few pixels wide, so labels change often near tile borders.
    blobs = ndi.gaussian_filter(rng.normal(0, 1, shape), 3.0)
    return image + (blobs / blobs.std()).astype(np.float32)


@pytest.fixture(scope="module")
def model_2d():
    return ThresholdSegmenter(sigma=2.5).fit(_image((64, 64), seed=1))


@pytest.fixture(scope="module")
def model_3d():
    return ThresholdSegmenter(sigma=(2.0, 2.0, 3.0)).fit(_image((24, 30, 30), seed=2))


class BoxSumSegmenter:
    """Two-channel test model: 3×3 box mean of the channel sum, thresholded at 0."""

    spatial_dims = 2
    halo = 1
    n_channels_ = 2
    classes_ = np.array([0, 1], dtype=np.uint8)

    def __init__(self):
        self.blocks = []

    def _score(self, image):
        image = np.asarray(image, np.float32)
        assert image.ndim == 3 and image.shape[-1] == 2
        self.blocks.append(image.shape)
        return ndi.uniform_filter(image.sum(axis=-1), size=3, mode="reflect")

    def predict_proba(self, image):
        p = 1 / (1 + np.exp(-self._score(image)))
        return np.stack([1 - p, p], axis=-1).astype(np.float32)

    def predict(self, image):
        return (self._score(image) > 0).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# iter_tiles


def _check_cover(shape, tile, halo):
    tiles = list(iter_tiles(shape, tile=tile, halo=halo))
    tile_size = np.broadcast_to(tile, (len(shape),))
    halo_size = np.broadcast_to(halo, (len(shape),))
    count = np.zeros(shape, np.int32)
    for t in tiles:
        assert isinstance(t, Tile)
        count[t.core] += 1
        for ax, (read, core, inner) in enumerate(zip(t.read, t.core, t.core_in_block)):
            n, size, h = shape[ax], int(tile_size[ax]), int(halo_size[ax])
            assert 0 <= read.start <= core.start < core.stop <= read.stop <= n
            assert core.stop - core.start <= size
            assert read.start == max(core.start - h, 0)
            assert read.stop == min(core.stop + h, n)
            assert inner.start == core.start - read.start
            assert inner.stop - inner.start == core.stop - core.start
            assert core.start % size == 0
    np.testing.assert_array_equal(count, 1)
    expected = np.prod([-(-n // int(t)) for n, t in zip(shape, tile_size)])
    assert len(tiles) == expected
    return tiles


@pytest.mark.parametrize(
    "shape, tile, halo",
    [
        ((5, 4), 3, 1),
        ((17, 23), 5, 2),
        ((17, 23), (4, 7), (0, 3)),
        ((16, 16), 16, 2),
        ((10, 7), 64, 5),
        ((9, 11, 13), (2, 5, 13), (1, 0, 4)),
        ((7, 9, 5), 1, 3),
        ((31,), 4, 10),
    ],
)
def test_iter_tiles_cover_every_pixel_once(shape, tile, halo):
    _check_cover(shape, tile, halo)


def test_iter_tiles_tile_larger_than_image_is_one_tile():
    (only,) = list(iter_tiles((10, 7), tile=64, halo=5))
    assert only.read == only.core == (slice(0, 10), slice(0, 7))
    assert only.core_in_block == (slice(0, 10), slice(0, 7))


def test_iter_tiles_c_order():
    tiles = list(iter_tiles((4, 6), tile=(2, 3)))
    starts = [(t.core[0].start, t.core[1].start) for t in tiles]
    assert starts == [(0, 0), (0, 3), (2, 0), (2, 3)]


def test_iter_tiles_errors():
    with pytest.raises(ValueError, match="tile must be at least 1"):
        list(iter_tiles((5, 5), tile=0))
    with pytest.raises(ValueError, match="halo must not be negative"):
        list(iter_tiles((5, 5), tile=2, halo=(1, -1)))
    with pytest.raises(ValueError, match="tile has 3 values but there are 2 spatial axes"):
        list(iter_tiles((5, 5), tile=(2, 2, 2)))
    with pytest.raises(ValueError, match="halo has 1 values but there are 2 spatial axes"):
        list(iter_tiles((5, 5), tile=2, halo=(1,)))


# --------------------------------------------------------------------------------------------
# predict_tiled equals predict


@pytest.mark.parametrize("tile", [64, 32, 31, 33, 17, 9, 5, (13, 40), (70, 3)])
def test_tiled_equals_untiled_2d(model_2d, tile):
    image = _image((67, 61), seed=3)
    assert model_2d.halo == (10, 10)
    labels, proba = predict_tiled(model_2d, image, tile=tile, output="both")
    np.testing.assert_array_equal(labels, model_2d.predict(image))
    np.testing.assert_array_equal(proba, model_2d.predict_proba(image))
    assert labels.dtype == model_2d.classes_.dtype
    assert proba.dtype == np.float32
    only_labels = predict_tiled(model_2d, image, tile=tile)
    np.testing.assert_array_equal(only_labels, labels)
    only_proba = predict_tiled(model_2d, image, tile=tile, output="proba")
    np.testing.assert_array_equal(only_proba, proba)


@pytest.mark.parametrize("tile", [32, 15, 16, (7, 9, 4), (1, 40, 40), 3])
def test_tiled_equals_untiled_3d(model_3d, tile):
    image = _image((15, 27, 25), seed=4)
    assert model_3d.halo == (8, 8, 12)
    labels, proba = predict_tiled(model_3d, image, tile=tile, output="both")
    np.testing.assert_array_equal(labels, model_3d.predict(image))
    np.testing.assert_array_equal(proba, model_3d.predict_proba(image))


def test_tiled_labels_are_argmax_of_proba(model_2d):
    image = _image((40, 45), seed=5)
    labels, proba = predict_tiled(model_2d, image, tile=11, output="both")
    np.testing.assert_array_equal(labels, model_2d.classes_[np.argmax(proba, axis=-1)])


def test_too_small_halo_differs(model_2d):
    image = _image((67, 61), seed=3)
    expected_labels = model_2d.predict(image)
    expected_proba = model_2d.predict_proba(image)
    labels, proba = predict_tiled(model_2d, image, tile=16, halo=0, output="both")
    assert (labels != expected_labels).any()
    assert (proba != expected_proba).any()
    # Smaller than the kernel radius but not zero still differs somewhere.
    proba = predict_tiled(model_2d, image, tile=16, halo=5, output="proba")
    assert (proba != expected_proba).any()
    # The default halo is the model's.
    np.testing.assert_array_equal(predict_tiled(model_2d, image, tile=16), expected_labels)


def test_leading_axes_predicted_slice_by_slice(model_2d):
    stack = _image((3, 37, 41), seed=6)
    labels, proba = predict_tiled(model_2d, stack, tile=12, output="both")
    assert labels.shape == stack.shape and proba.shape == (*stack.shape, 2)
    for z in range(stack.shape[0]):
        np.testing.assert_array_equal(labels[z], model_2d.predict(stack[z]))
        np.testing.assert_array_equal(proba[z], model_2d.predict_proba(stack[z]))
    # Two leading axes (t, z, y, x) work alike.
    four = stack.reshape(1, 3, 37, 41)
    np.testing.assert_array_equal(predict_tiled(model_2d, four, tile=20), labels[None])


def test_progress_reports_every_tile(model_2d):
    calls = []
    image = _image((2, 30, 25), seed=7)
    predict_tiled(model_2d, image, tile=10, progress=lambda *args: calls.append(args))
    total = 2 * 3 * 3
    assert calls == [(i, total) for i in range(1, total + 1)]


# --------------------------------------------------------------------------------------------
# array-likes in and out


def test_dask_input(model_2d):
    image = _image((50, 47), seed=8)
    lazy = da.from_array(image, chunks=(20, 20))
    labels, proba = predict_tiled(model_2d, lazy, tile=16, output="both")
    assert isinstance(labels, np.ndarray)
    np.testing.assert_array_equal(labels, model_2d.predict(image))
    np.testing.assert_array_equal(proba, model_2d.predict_proba(image))


def test_zarr_input_and_output_in_place(model_2d, tmp_path):
    image = _image((2, 45, 52), seed=9)
    source = zarr.create_array(
        store=tmp_path / "in.zarr", shape=image.shape, chunks=(1, 16, 16), dtype="float32"
    )
    source[...] = image
    out = zarr.create_array(
        store=tmp_path / "labels.zarr", shape=image.shape, chunks=(1, 16, 16), dtype="uint8"
    )
    proba_out = zarr.create_array(
        store=tmp_path / "proba.zarr",
        shape=(*image.shape, 2),
        chunks=(1, 16, 16, 2),
        dtype="float32",
    )
    result = predict_tiled(
        model_2d,
        zarr.open_array(tmp_path / "in.zarr", mode="r"),
        tile=20,
        output="both",
        out=out,
        proba_out=proba_out,
    )
    assert result[0] is out and result[1] is proba_out
    written = zarr.open_array(tmp_path / "labels.zarr", mode="r")[...]
    written_proba = zarr.open_array(tmp_path / "proba.zarr", mode="r")[...]
    for z in range(2):
        np.testing.assert_array_equal(written[z], model_2d.predict(image[z]))
        np.testing.assert_array_equal(written_proba[z], model_2d.predict_proba(image[z]))


def test_h5py_input(model_3d, tmp_path):
    image = _image((12, 30, 20), seed=10)
    with h5py.File(tmp_path / "vol.h5", "w") as f:
        f.create_dataset("data", data=image, chunks=(4, 10, 10))
    with h5py.File(tmp_path / "vol.h5", "r") as f:
        labels = predict_tiled(model_3d, f["data"], tile=(5, 11, 9))
    np.testing.assert_array_equal(labels, model_3d.predict(image))


def test_numpy_out_is_filled_in_place(model_2d):
    image = _image((30, 30), seed=11)
    out = np.full(image.shape, 99, np.uint8)
    result = predict_tiled(model_2d, image, tile=7, out=out)
    assert result is out
    np.testing.assert_array_equal(out, model_2d.predict(image))


def test_input_is_not_modified(model_2d):
    image = _image((30, 30), seed=12)
    copy = image.copy()
    predict_tiled(model_2d, image, tile=7, output="both")
    np.testing.assert_array_equal(image, copy)


# --------------------------------------------------------------------------------------------
# channels


def test_channels_last_tiled_equals_untiled():
    model = BoxSumSegmenter()
    image = _image((29, 34, 2), seed=13)
    expected_labels = model.predict(image)
    expected_proba = model.predict_proba(image)
    assert 0 < expected_labels.mean() < 1
    for tile in (5, 8, (3, 34), 1):
        model.blocks.clear()
        labels, proba = predict_tiled(model, image, tile=tile, output="both")
        assert labels.shape == (29, 34) and proba.shape == (29, 34, 2)
        np.testing.assert_array_equal(labels, expected_labels)
        np.testing.assert_array_equal(proba, expected_proba)
        assert all(shape[-1] == 2 for shape in model.blocks)
        np.testing.assert_array_equal(predict_tiled(model, image, tile=tile), expected_labels)
    labels = predict_tiled(model, image, tile=8, halo=0)
    assert (labels != expected_labels).any()


def test_channels_last_with_leading_axis():
    model = BoxSumSegmenter()
    stack = _image((3, 20, 22, 2), seed=14)
    labels = predict_tiled(model, stack, tile=6)
    assert labels.shape == (3, 20, 22)
    for z in range(3):
        np.testing.assert_array_equal(labels[z], model.predict(stack[z]))


# --------------------------------------------------------------------------------------------
# errors


def test_errors(model_2d, model_3d):
    image = _image((20, 20), seed=15)
    with pytest.raises(ValueError, match="image has 1 dimensions but the model is 2-D"):
        predict_tiled(model_2d, image[0], tile=8)
    with pytest.raises(ValueError, match="image has 2 dimensions but the model is 3-D"):
        predict_tiled(model_3d, image, tile=8)
    with pytest.raises(ValueError, match=r"out has shape \(20, 19\) but should be \(20, 20\)"):
        predict_tiled(model_2d, image, tile=8, out=np.zeros((20, 19), np.uint8))
    with pytest.raises(ValueError, match=r"proba_out has shape \(20, 20\) but should be"):
        predict_tiled(model_2d, image, tile=8, output="proba", proba_out=np.zeros((20, 20)))
    with pytest.raises(ValueError, match="output must be"):
        predict_tiled(model_2d, image, tile=8, output="mask")
    with pytest.raises(ValueError, match="tile must be at least 1"):
        predict_tiled(model_2d, image, tile=0)
    with pytest.raises(ValueError, match="halo has 3 values"):
        predict_tiled(model_2d, image, tile=8, halo=(1, 2, 3))
    with pytest.raises(ValueError, match="expects 2 channels on the last axis"):
        predict_tiled(BoxSumSegmenter(), _image((10, 10, 3)), tile=4)
    with pytest.raises(ValueError, match="expects 2 channels on the last axis"):
        predict_tiled(BoxSumSegmenter(), _image((10, 2)), tile=4)


def test_default_tile_budget_and_chunk_rounding():
    from niseg.tiling import DEFAULT_TILE_PIXELS, default_tile

    for shape in [(10000, 10000), (500, 500, 500), (2, 4000, 4000), (100, 50000)]:
        tile = default_tile(shape)
        assert all(1 <= t <= n for t, n in zip(tile, shape))
        assert np.prod(tile) <= 1.1 * DEFAULT_TILE_PIXELS
        assert np.prod(tile) >= 0.5 * min(DEFAULT_TILE_PIXELS, np.prod(shape))
    assert default_tile((64, 64)) == (64, 64)
    tile = default_tile((10000, 10000), chunks=(768, 700))
    assert tile[0] % 768 == 0 and tile[1] % 700 == 0


def test_default_tile_follows_zarr_chunks_and_stays_exact(tmp_path):
    import zarr

    from niseg.threshold import ThresholdSegmenter
    from niseg.tiling import predict_tiled

    image = np.random.default_rng(5).random((300, 260)).astype(np.float32)
    store = zarr.create_array(store=str(tmp_path / "a.zarr"), shape=image.shape,
                              chunks=(64, 64), dtype="float32")
    store[...] = image
    model = ThresholdSegmenter(sigma=2.0).fit(image)
    seen = []
    labels = predict_tiled(model, store, progress=lambda done, total: seen.append(total))
    np.testing.assert_array_equal(labels, model.predict(image))
    assert seen[-1] == 1  # the whole 300x260 image fits one default tile
