"""niseg.features: FeatureSpec and compute_features against SciPy / scikit-image."""

from __future__ import annotations

import json
from itertools import combinations_with_replacement

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import feature as skf

from niseg.features import (
    FILTERS,
    ILASTIK_SCALES,
    FeatureSpec,
    compute_features,
    pixel_features,
    symmetric_eigenvalues,
)


def _smooth_noise(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (ndi.gaussian_filter(rng.normal(size=shape), 2.0) * 100 + 50).astype(np.float32)


def _single(image, name, s, **kw):
    spec = FeatureSpec(filters=(name,), scales=(s,), raw=False, **kw)
    return compute_features(image, spec)


@pytest.mark.parametrize("s", [0.7, 1.6, 3.5])
def test_scalar_filters_equal_scipy(s):
    a = _smooth_noise((48, 56))
    a64 = a.astype(np.float64)
    np.testing.assert_allclose(_single(a, "gaussian", s)[..., 0],
                               ndi.gaussian_filter(a64, s), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(_single(a, "gradient", s)[..., 0],
                               ndi.gaussian_gradient_magnitude(a64, s), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_single(a, "log", s)[..., 0],
                               ndi.gaussian_laplace(a64, s), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_single(a, "dog", s)[..., 0],
                               ndi.gaussian_filter(a64, s) - ndi.gaussian_filter(a64, 1.6 * s),
                               rtol=1e-4, atol=1e-4)


def test_hessian_eigenvalues_equal_skimage_2d():
    a = _smooth_noise((64, 64))
    a64 = a.astype(np.float64)
    s = 3.0
    f = _single(a, "hessian", s)
    # Same Gaussian derivatives, skimage's eigenvalue routine: equal to float32 precision.
    exact = skf.hessian_matrix_eigvals([ndi.gaussian_filter(a64, s, order=o)
                                        for o in ([2, 0], [1, 1], [0, 2])])
    np.testing.assert_allclose(np.moveaxis(f, -1, 0), exact, atol=1e-4, rtol=1e-4)
    # skimage's hessian_matrix cascades two first derivatives at s / sqrt(2) (truncate 8):
    # the same operator in the interior, a different one at the reflected border.
    h = skf.hessian_matrix(a64, sigma=s, mode="reflect", order="rc",
                           use_gaussian_derivatives=True)
    ref = skf.hessian_matrix_eigvals(h)
    core = (slice(None), slice(20, -20), slice(20, -20))
    scale = np.abs(ref).max()
    np.testing.assert_allclose(np.moveaxis(f, -1, 0)[core], ref[core], atol=2e-3 * scale)


def test_structure_tensor_eigenvalues_equal_skimage_2d():
    a = _smooth_noise((64, 64))
    a64 = a.astype(np.float64)
    s = 2.0
    f = _single(a, "structure", s)
    d = [ndi.gaussian_filter(a64, s, order=o) for o in ([1, 0], [0, 1])]
    outer = FeatureSpec().structure_outer * s  # ilastik's outer scale, 0.5 s
    tensor = [ndi.gaussian_filter(d[i] * d[j], outer) for i, j in ((0, 0), (0, 1), (1, 1))]
    exact = skf.structure_tensor_eigenvalues(tensor)
    np.testing.assert_allclose(np.moveaxis(f, -1, 0), exact, rtol=1e-4,
                               atol=1e-5 * exact.max())
    # skimage's structure_tensor differentiates with Sobel kernels (8x the derivative, so
    # 64x the tensor, plus a [1, 2, 1] smoothing across) on the raw image: applied to the
    # Gaussian-smoothed image it approaches our inner scale as the scale grows.
    b = _smooth_noise((96, 96), seed=1)
    s = 4.0
    f = _single(b, "structure", s, structure_outer=2.0)
    st = skf.structure_tensor(ndi.gaussian_filter(b.astype(np.float64), s), sigma=2 * s,
                              mode="reflect")
    ref = skf.structure_tensor_eigenvalues(st) / 64
    core = (slice(None), slice(30, -30), slice(30, -30))
    np.testing.assert_allclose(np.moveaxis(f, -1, 0)[core], ref[core],
                               atol=0.05 * ref[0][core[1:]].max())


def test_3d_hessian_and_structure_match_references():
    v = _smooth_noise((20, 22, 24), seed=1)
    v64 = v.astype(np.float64)
    s = 1.0
    spec = FeatureSpec(filters=("structure", "hessian"), scales=(s,), raw=False)
    f = compute_features(v, spec)
    assert f.shape == (20, 22, 24, 6) and f.dtype == np.float32
    axes = range(3)
    orders = []
    for a, b in combinations_with_replacement(axes, 2):
        o = [0, 0, 0]
        o[a] += 1
        o[b] += 1
        orders.append(o)
    hess = skf.hessian_matrix_eigvals([ndi.gaussian_filter(v64, s, order=o) for o in orders])
    np.testing.assert_allclose(np.moveaxis(f[..., 3:], -1, 0), hess,
                               atol=2e-3 * np.abs(hess).max())
    d = [ndi.gaussian_filter(v64, s, order=o) for o in ([1, 0, 0], [0, 1, 0], [0, 0, 1])]
    tensor = [ndi.gaussian_filter(d[i] * d[j], FeatureSpec().structure_outer * s)
              for i, j in combinations_with_replacement(axes, 2)]
    st = skf.structure_tensor_eigenvalues(tensor)
    np.testing.assert_allclose(np.moveaxis(f[..., :3], -1, 0), st, atol=2e-3 * st.max())
    assert np.all(f[..., 0] >= f[..., 1] - 1e-3) and np.all(f[..., 1] >= f[..., 2] - 1e-3)


def test_symmetric_eigenvalues_closed_form_matches_eigvalsh():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(500, 3, 3))
    m = m + np.swapaxes(m, 1, 2)
    m[:5] = np.diag([2.0, 2.0, 2.0])  # degenerate: p = 0
    m[5:10] = np.diag([1.0, 1.0, -3.0])  # two equal eigenvalues
    elems = [m[:, i, j] for i, j in combinations_with_replacement(range(3), 2)]
    ours = np.stack(symmetric_eigenvalues(elems))
    ref = np.linalg.eigvalsh(m)[:, ::-1].T
    np.testing.assert_allclose(ours, ref, atol=1e-9)
    ours32 = np.stack(symmetric_eigenvalues([e.astype(np.float32) for e in elems]))
    assert ours32.dtype == np.float32
    np.testing.assert_allclose(ours32, ref, atol=2e-4 * np.abs(ref).max())
    with pytest.raises(ValueError, match="upper-triangle"):
        symmetric_eigenvalues(elems[:4])


def test_anisotropic_spacing_scales_sigma_per_axis_and_derivatives():
    v = _smooth_noise((16, 24, 24), seed=2)
    s = 2.0
    spec = FeatureSpec(filters=("gaussian", "gradient"), scales=(s,), raw=False)
    f = compute_features(v, spec, spacing=(2.0, 1.0, 1.0))
    np.testing.assert_allclose(f[..., 0], ndi.gaussian_filter(v.astype(np.float64),
                                                              (s / 2, s, s)), atol=1e-3)
    # A ramp of 3 per z pixel is 1.5 per unit length when z pixels are 2 units long.
    ramp = np.broadcast_to(3.0 * np.arange(16, dtype=np.float32)[:, None, None],
                           (16, 24, 24)).copy()
    g = compute_features(ramp, spec, spacing=(2.0, 1.0, 1.0))[..., 1]
    np.testing.assert_allclose(g[4:-4], 1.5, rtol=1e-4)
    # Same physical structure sampled twice as finely along z: same features.
    up = np.repeat(v, 2, axis=0)
    fine = compute_features(ndi.gaussian_filter(up, (1, 0, 0)), FeatureSpec(
        filters=("gaussian",), scales=(4.0,), raw=False))[..., 0]
    coarse = compute_features(ndi.gaussian_filter(up, (1, 0, 0))[::2], FeatureSpec(
        filters=("gaussian",), scales=(4.0,), raw=False), spacing=(2.0, 1.0, 1.0))[..., 0]
    np.testing.assert_allclose(coarse[3:-3], fine[::2][3:-3], atol=0.02 * np.ptp(fine))
    assert spec.halo_per_axis((2.0, 1.0, 1.0), 3) == (4, 8, 8)


@pytest.mark.parametrize("ndim", [2, 3])
def test_crop_with_halo_equals_full_image_exactly(ndim):
    if ndim == 2:
        image = _smooth_noise((130, 140), seed=4)
        spec = FeatureSpec(scales=(0.3, 1.0, 3.5), local_stats=("mean", "variance", "median"),
                           window=5, neighbourhood=1, position=True)
        core = (slice(50, 62), slice(55, 70))
    else:
        image = _smooth_noise((40, 42, 44), seed=5)
        spec = FeatureSpec(scales=(0.7, 1.6), local_stats=("min", "max"), window=3,
                           neighbourhood=1, position=True, structure_outer=1.0)
        core = (slice(18, 24), slice(19, 25), slice(20, 26))
    h = spec.halo
    full = compute_features(image, spec)
    crop = tuple(slice(c.start - h, c.stop + h) for c in core)
    assert all(c.start >= 0 for c in crop)
    part = compute_features(image[crop], spec, origin=[c.start for c in crop])
    inner = tuple(slice(h, h + c.stop - c.start) for c in core)
    np.testing.assert_array_equal(part[inner], full[core])
    # One pixel less margin than the halo changes some feature.
    tight = tuple(slice(c.start - h + 1, c.stop + h - 1) for c in core)
    part2 = compute_features(image[tight], spec)
    inner2 = tuple(slice(h - 1, h - 1 + c.stop - c.start) for c in core)
    assert not np.array_equal(part2[inner2], full[core])


def test_threads_do_not_change_results():
    a = _smooth_noise((40, 40))
    spec = FeatureSpec.preset("fast")
    np.testing.assert_array_equal(compute_features(a, spec, n_threads=1),
                                  compute_features(a, spec, n_threads=4))


def test_presets_counts_and_names():
    ilastik = FeatureSpec.preset("ilastik")
    assert ilastik.filters == FILTERS and ilastik.scales == ILASTIK_SCALES
    assert ilastik.n_features(1, 2) == 1 + 7 * (4 + 2 + 2)
    assert ilastik.n_features(1, 3) == 1 + 7 * (4 + 3 + 3)
    assert ilastik.n_features(2, 2) == 2 * 57
    # DoG at 10 reaches G(16) (radius 64); the structure tensor 40 (inner 10) + 20 (outer 5)
    assert ilastik.halo == 64
    names = ilastik.names(1, 2)
    assert names[:2] == ["raw", "gaussian s=0.3"]
    assert "structure s=1.6 e2" in names and names[-1] == "hessian s=10 e2"
    assert len(set(names)) == len(names)
    fast = FeatureSpec.preset("FAST")
    assert fast.names(1, 2) == ["raw", "gaussian s=1", "gaussian s=3.5", "gaussian s=10",
                                "log s=1", "log s=3.5", "log s=10", "gradient s=1",
                                "gradient s=3.5", "gradient s=10"]
    assert fast.halo == 40
    custom = FeatureSpec(filters=("hessian", "gaussian"), scales=(2,), raw=False,
                         local_stats=("max", "mean"), window=3, neighbourhood=1,
                         position=True)
    assert custom.filters == ("gaussian", "hessian")
    assert custom.local_stats == ("mean", "max")
    n2 = custom.names(2, 2)
    assert len(n2) == 2 * (1 + 2 + 2 + 8) + 2
    assert n2[:3] == ["ch1 gaussian s=2", "ch1 hessian s=2 e1", "ch1 hessian s=2 e2"]
    assert n2[-2:] == ["position y", "position x"] and "ch2 shift -1,1" in n2
    assert custom.halo == 8
    with pytest.raises(ValueError, match="unknown feature preset"):
        FeatureSpec.preset("weka")


def test_json_round_trip():
    spec = FeatureSpec(filters=("dog", "structure"), scales=(0.7, 5.0), position=True,
                       local_stats=("median",), window=7, neighbourhood=2,
                       structure_outer=0.5)
    text = json.dumps(spec.to_dict())
    back = FeatureSpec.from_dict(json.loads(text))
    assert back == spec and back.halo == spec.halo
    with pytest.raises(ValueError, match="unknown keys"):
        FeatureSpec.from_dict({"filters": ["gaussian"], "sigma": 1})


def test_multichannel_features_per_channel():
    a = _smooth_noise((30, 32), seed=6)
    b = _smooth_noise((30, 32), seed=7)
    spec = FeatureSpec.preset("fast")
    both = compute_features(np.stack([a, b], axis=-1), spec, channel_axis=-1)
    assert both.shape == (30, 32, 20)
    np.testing.assert_array_equal(both[..., :10], compute_features(a, spec))
    np.testing.assert_array_equal(both[..., 10:], compute_features(b, spec))
    first = compute_features(np.stack([a, b]), spec, channel_axis=0)
    np.testing.assert_array_equal(first, both)


def test_raw_stats_neighbourhood_and_position_values():
    a = np.arange(7 * 9, dtype=np.uint16).reshape(7, 9) * 1000 + 30000
    spec = FeatureSpec(filters=(), local_stats=("mean", "variance", "min", "max", "median"),
                       window=3, neighbourhood=1, position=True)
    f = compute_features(a, spec, spacing=(0.5, 2.0))
    names = spec.names(1, 2)
    col = {n: i for i, n in enumerate(names)}
    af = a.astype(np.float64)
    np.testing.assert_array_equal(f[..., col["raw"]], a)
    np.testing.assert_allclose(f[..., col["mean w=3"]], ndi.uniform_filter(af, 3), rtol=1e-6)
    ref_var = ndi.generic_filter(af, np.var, size=3, mode="reflect")
    np.testing.assert_allclose(f[..., col["variance w=3"]], ref_var, rtol=1e-5, atol=1e-2)
    np.testing.assert_array_equal(f[..., col["median w=3"]], ndi.median_filter(af, 3))
    np.testing.assert_array_equal(f[..., col["min w=3"]], ndi.minimum_filter(af, 3))
    # shift -1,0 holds the pixel above (reflected at the first row).
    up = f[..., col["shift -1,0"]]
    np.testing.assert_array_equal(up[1:], a[:-1])
    np.testing.assert_array_equal(up[0], a[0])
    np.testing.assert_array_equal(f[..., col["position y"]][:, 0], np.arange(7) * 0.5)
    np.testing.assert_array_equal(f[..., col["position x"]][0], np.arange(9) * 2.0)


def test_pixel_features_agrees_with_filter_bank():
    a = _smooth_noise((32, 32))
    old, _ = pixel_features(a, filters=("gaussian", "gradient", "dog", "laplacian"),
                            sigmas=(1.0, 2.0))
    new = compute_features(a, FeatureSpec(filters=("gaussian", "gradient", "dog", "log"),
                                          scales=(1.0, 2.0), raw=False))
    # pixel_features orders gaussian, gradient, dog, laplacian; the bank gaussian, log, ...
    np.testing.assert_allclose(old[..., [0, 1, 6, 7, 2, 3, 4, 5]], new, rtol=1e-5, atol=1e-4)


def test_errors():
    a = _smooth_noise((16, 16))
    with pytest.raises(ValueError, match="scales must be positive"):
        FeatureSpec(scales=(1.0, 0.0))
    with pytest.raises(ValueError, match="scales must be positive"):
        FeatureSpec(scales=(-1.0,))
    with pytest.raises(ValueError, match="unknown filters entry 'sobel'"):
        FeatureSpec(filters=("gaussian", "sobel"))
    with pytest.raises(ValueError, match="unknown local_stats entry"):
        FeatureSpec(local_stats=("mode",))
    with pytest.raises(ValueError, match="window must be an odd"):
        FeatureSpec(local_stats=("mean",), window=4)
    with pytest.raises(ValueError, match="neighbourhood"):
        FeatureSpec(neighbourhood=-1)
    with pytest.raises(ValueError, match="selects no feature"):
        FeatureSpec(filters=(), raw=False)
    bad = a.copy()
    bad[3, 3] = np.nan
    spec = FeatureSpec.preset("fast")
    with pytest.raises(ValueError, match="NaN"):
        compute_features(bad, spec)
    with pytest.raises(ValueError, match="channel_axis 3 is out of range"):
        compute_features(np.stack([a, a], -1), spec, channel_axis=3)
    with pytest.raises(ValueError, match="2 or 3 spatial axes"):
        compute_features(a, spec, channel_axis=0)
    with pytest.raises(ValueError, match="2D"):
        compute_features(a[0], spec)
    with pytest.raises(ValueError, match="spacing must be 2 positive"):
        compute_features(a, spec, spacing=(1.0, 0.0))
    with pytest.raises(TypeError, match="spec must be a FeatureSpec"):
        compute_features(a, "ilastik")
    with pytest.raises(TypeError, match="numeric"):
        compute_features(a.astype(complex), spec)
