"""Open-beam / dark-current normalization against simulated data with exact transmission."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy import ndimage

from niseg.preprocess import GUARD_COUNTS, combine_frames, minus_log, normalize
from niseg.simulate import default_phantom, simulate_radiograph

SIZE = 128
PIXEL_UM = 200.0
DARK_LEVEL = 100.0
READ_NOISE = 3.0


def _phantom():
    return default_phantom(seed=0, size_cm=SIZE * PIXEL_UM * 1e-4)


def _dark(rng, shape=(SIZE, SIZE), level=DARK_LEVEL):
    return (level + rng.normal(0.0, READ_NOISE, shape)).astype(np.float32)


def _experiment(counts, *, n_open=5, n_dark=5, sample_counts=None, open_counts=None,
                dark_level=DARK_LEVEL, open_dark_level=DARK_LEVEL, seed=0):
    """A sample radiograph plus open-beam and dark frames of the same beam, all with dark."""
    phantom = _phantom()
    rng = np.random.default_rng(100 + seed)
    rad = simulate_radiograph(size=SIZE, counts=sample_counts or counts, pixel_size_um=PIXEL_UM,
                              phantom=phantom, seed=seed)
    sample = rad.image + _dark(rng)
    # The seed varies only the noise: the phantom and beam profile stay the same.
    opens = [simulate_radiograph(size=SIZE, counts=open_counts or counts, pixel_size_um=PIXEL_UM,
                                 phantom=phantom, seed=1000 + seed * 10 + k).open_beam
             + _dark(rng, level=open_dark_level) for k in range(n_open)]
    darks = [_dark(rng, level=dark_level) for _ in range(n_dark)]
    return rad, sample, opens, darks


def _regions(rad, minimum=40):
    """Eroded class regions (0 = open beam), so edge pixels do not mix classes."""
    for label in range(len(rad.metadata["classes"]) + 1):
        mask = ndimage.binary_erosion(rad.truth == label, iterations=2)
        if mask.sum() >= minimum:
            yield label, mask


def _relative_errors(result, rad, min_t=0.05):
    errors = {}
    for label, mask in _regions(rad):
        truth = float(rad.transmission[mask].mean())
        if truth >= min_t:
            errors[label] = abs(float(np.nanmean(result[mask])) / truth - 1.0)
    return errors


# ------------------------------------------------------------------------- combine_frames


def test_combine_frames_median_and_mean_match_numpy():
    rng = np.random.default_rng(0)
    frames = rng.poisson(500, (7, 20, 30)).astype(np.uint16)
    np.testing.assert_allclose(combine_frames(frames), np.median(frames, axis=0))
    np.testing.assert_allclose(combine_frames(frames, method="mean"), frames.mean(axis=0),
                               rtol=1e-6)
    moved = np.moveaxis(frames, 0, -1)
    np.testing.assert_array_equal(combine_frames(moved, axis=-1), combine_frames(frames))
    assert combine_frames(frames).dtype == np.float32


def test_combine_frames_median_rejects_a_spot_in_one_frame():
    frames = np.full((5, 8, 8), 1000.0, np.float32)
    frames[2, 3, 3] = 60000.0
    assert combine_frames(frames)[3, 3] == 1000.0
    assert combine_frames(frames, method="mean")[3, 3] > 10000.0


def test_combine_frames_list_of_frames_and_stacks():
    a = np.full((4, 5), 1.0)
    stack = np.stack([np.full((4, 5), 2.0), np.full((4, 5), 3.0), np.full((4, 5), 10.0)])
    np.testing.assert_array_equal(combine_frames([a, stack]), np.full((4, 5), 2.5))
    np.testing.assert_array_equal(combine_frames([a, a * 3], method="mean"), np.full((4, 5), 2.0))


def test_combine_frames_ignores_nan():
    frames = np.array([[[1.0, np.nan]], [[3.0, 5.0]], [[5.0, np.nan]]])
    np.testing.assert_array_equal(combine_frames(frames), [[3.0, 5.0]])
    np.testing.assert_array_equal(combine_frames(frames, method="mean"), [[3.0, 5.0]])
    all_nan = np.full((3, 1, 1), np.nan)
    assert np.isnan(combine_frames(all_nan)[0, 0])


def test_combine_frames_bad_input():
    with pytest.raises(ValueError, match="method must be 'median' or 'mean'"):
        combine_frames(np.zeros((2, 3, 3)), method="max")
    with pytest.raises(ValueError, match="empty list"):
        combine_frames([])
    with pytest.raises(ValueError, match=r"frames\[1\] holds frames of shape \(4, 4\)"):
        combine_frames([np.zeros((3, 3)), np.zeros((4, 4))])
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        combine_frames(np.zeros((2, 3, 3)), axis=3)
    with pytest.raises(TypeError, match="real numbers"):
        combine_frames(np.zeros((2, 3, 3), complex))


# ------------------------------------------------------------------------- accuracy


def test_region_means_within_one_percent_at_ten_thousand_counts():
    rad, sample, opens, darks = _experiment(1e4)
    t, stats = normalize(sample, opens, darks)
    assert t.dtype == np.float32 and t.shape == sample.shape
    errors = _relative_errors(t, rad)
    assert len(errors) >= 4  # open beam and at least three materials
    assert max(errors.values()) < 0.01, errors
    # Cadmium is nearly opaque (T ~ 0.003): its absolute error is still tiny.
    for _, mask in _regions(rad):
        assert abs(float(np.nanmean(t[mask])) - float(rad.transmission[mask].mean())) < 0.002
    assert stats["n_open_beam_frames"] == 5 and stats["n_dark_frames"] == 5
    assert stats["n_guarded"] == 0
    assert stats["combine"] == "median"
    # About half the open-beam pixels exceed 1 by noise; counted, not clipped.
    assert 0.2 < stats["fraction_above_one"] < 0.6
    assert float(np.nanmax(t)) > 1.0


def test_mean_combine_is_also_accurate_and_less_noisy():
    rad, sample, opens, darks = _experiment(1e3)
    t_med, _ = normalize(sample, opens, darks)
    t_mean, stats = normalize(sample, opens, darks, combine="mean")
    assert stats["combine"] == "mean"
    assert max(_relative_errors(t_mean, rad).values()) < 0.01
    open_region = next(mask for label, mask in _regions(rad) if label == 0)
    assert np.std(t_mean[open_region]) < np.std(t_med[open_region])


def test_beer_lambert_thickness_from_minus_log():
    rad, sample, opens, darks = _experiment(1e4)
    attenuation, stats = normalize(sample, opens, darks, log=True)
    assert stats["log"] and stats["n_log_undefined"] == 0
    classes = rad.metadata["classes"]
    mu = rad.metadata["mu_per_cm"]
    # Constant thickness along the beam: iron cylinder 1 cm, copper plate 0.5 cm.
    for name, thickness in (("iron", 1.0), ("copper", 0.5)):
        mask = ndimage.binary_erosion(rad.truth == classes.index(name) + 1, iterations=2)
        recovered = float(np.nanmean(attenuation[mask])) / mu[name]
        assert recovered == pytest.approx(thickness, rel=0.02), name
    t, _ = normalize(sample, opens, darks)
    np.testing.assert_allclose(attenuation, minus_log(t), rtol=1e-6, equal_nan=True)


def test_stack_normalizes_every_frame_with_the_same_references():
    frames = [_experiment(1e3, seed=s)[1] for s in range(3)]
    _, _, opens, darks = _experiment(1e3)
    stack = np.stack(frames)
    t, stats = normalize(stack, opens, darks, frame_axis=0)
    assert t.shape == stack.shape
    for k, frame in enumerate(frames):
        single, _ = normalize(frame, opens, darks)
        np.testing.assert_array_equal(t[k], single)
    last, stats_last = normalize(np.moveaxis(stack, 0, -1), opens, darks, frame_axis=-1)
    np.testing.assert_array_equal(np.moveaxis(last, -1, 0), t)
    assert stats["n_pixels"] == stack.size
    assert stats_last["frame_axis"] == 2


def _tof(counts=1e4, bins=10, size=32, repeats=3, seed=0):
    """A ToF cube (y, x, bins): a per-bin beam spectrum times a per-bin transmission."""
    rng = np.random.default_rng(seed)
    spectrum = counts * (0.4 + np.exp(-((np.arange(bins) - bins / 3) / (bins / 4)) ** 2))
    edge = np.arange(bins) >= bins // 2
    # Two materials with different Bragg edges: mu jumps at the edge for one, falls for the other.
    mu_a = np.where(edge, 1.5, 0.6)
    mu_b = np.where(edge, 0.5, 1.1)
    labels = np.zeros((size, size), np.uint8)
    labels[4:size - 4, 4:size // 2 - 1] = 1
    labels[4:size - 4, size // 2 + 1:size - 4] = 2
    mu = np.zeros((size, size, bins))
    mu[labels == 1] = mu_a
    mu[labels == 2] = mu_b
    transmission = np.exp(-mu)
    dark = _dark(rng, (size, size))
    sample = rng.poisson(spectrum * transmission).astype(np.float32) + dark[..., None]
    opens = np.stack([rng.poisson(np.broadcast_to(spectrum, (size, size, bins)))
                      .astype(np.float32) + dark[..., None] for _ in range(repeats)])
    return sample, opens, dark, transmission, labels


def test_tof_cube_each_bin_normalized_by_its_own_open_beam_bin():
    sample, opens, dark, transmission, labels = _tof()
    t, stats = normalize(sample, opens, dark, spectral_axis=-1)
    assert t.shape == sample.shape and stats["n_open_beam_frames"] == 3
    for label in (0, 1, 2):
        mask = ndimage.binary_erosion(labels == label)
        got = np.nanmean(t[mask], axis=0)
        want = transmission[mask].mean(axis=0)
        np.testing.assert_allclose(got, want, rtol=0.01)
    # Dividing by a bin-averaged open beam instead would get the spectrum wrong.
    flat = sample / opens.mean(axis=(0, 3))[..., None]
    assert np.max(np.abs(flat[labels == 0].mean(axis=0) - 1)) > 0.3

    # Bins first (l, y, x) gives the same numbers; a dark cube works like a single frame.
    t_first, _ = normalize(np.moveaxis(sample, -1, 0), np.moveaxis(opens, -1, 1), dark,
                           spectral_axis=0)
    np.testing.assert_allclose(np.moveaxis(t_first, 0, -1), t, rtol=1e-6)
    cube = np.repeat(dark[..., None], sample.shape[-1], axis=-1)
    t_cube, _ = normalize(sample, list(opens), cube, spectral_axis=2)
    np.testing.assert_allclose(t_cube, t, rtol=1e-6)


def test_stack_of_tof_cubes_with_dose_per_frame_and_bin():
    sample, opens, dark, transmission, labels = _tof(bins=4, size=24, counts=2e4)
    brighter = (sample - dark[..., None]) * 1.05 + dark[..., None]
    stack = np.stack([sample, brighter])  # (t, y, x, l)
    roi = (slice(0, 3), slice(0, 24))
    t, stats = normalize(stack, opens, dark, frame_axis=0, spectral_axis=3, dose_roi=roi)
    factors = np.array(stats["dose_factors"])
    assert factors.shape == (2, 4)
    np.testing.assert_allclose(factors[1] / factors[0], 1.05, rtol=1e-5)
    mask = ndimage.binary_erosion(labels == 1)
    for k in range(2):
        np.testing.assert_allclose(np.nanmean(t[k][mask], axis=0),
                                   transmission[mask].mean(axis=0), rtol=0.015)


# ------------------------------------------------------------------------- exposure and dose


def test_open_beam_at_half_exposure_gives_the_same_transmission():
    # Half the exposure: half the beam counts and half the dark signal in the open beam.
    rad, sample, opens, darks = _experiment(1e4, open_counts=5e3, open_dark_level=DARK_LEVEL / 2)
    with pytest.warns(UserWarning, match=r"sample exposure \(10 s\) differs from open-beam"):
        t, stats = normalize(sample, opens, darks,
                             exposure={"sample": 10.0, "open_beam": 5.0, "dark": 10.0})
    assert stats["scale_factors"]["open_beam_to_sample"] == 2.0
    assert stats["scale_factors"]["dark_to_open_beam"] == 0.5
    assert max(_relative_errors(t, rad).values()) < 0.01
    # Without the times the open beam looks twice too dark.
    unscaled, _ = normalize(sample, opens, darks)
    open_region = next(mask for label, mask in _regions(rad) if label == 0)
    assert float(np.mean(unscaled[open_region])) == pytest.approx(2.0, rel=0.02)


def test_dark_frames_at_another_exposure_are_scaled():
    # Dark signal grows with exposure: frames taken over 20 s hold twice the 10 s offset.
    rad, sample, opens, darks = _experiment(1e4, dark_level=2 * DARK_LEVEL)
    t, stats = normalize(sample, opens, darks,
                         exposure={"sample": 10.0, "open_beam": 10.0, "dark": 20.0})
    assert stats["scale_factors"]["dark_to_sample"] == 0.5
    assert max(_relative_errors(t, rad).values()) < 0.01


def test_exposure_per_open_beam_entry():
    _, sample, opens, darks = _experiment(1e4)
    doubled = [o * 2 for o in opens[:2]]  # as if taken over 20 s (dark included)
    with pytest.warns(UserWarning, match="differs"):
        t, _ = normalize(sample, [*doubled, *opens[2:]], darks,
                         exposure={"sample": 10.0, "open_beam": [20.0, 20.0, 10.0, 10.0, 10.0],
                                   "dark": 10.0})
    reference, _ = normalize(sample, opens, darks)
    np.testing.assert_allclose(np.nanmean(t), np.nanmean(reference), rtol=2e-3)


def test_dose_roi_corrects_a_five_percent_beam_change():
    _, frame0, opens, darks = _experiment(1e4)
    rad, frame1, _, _ = _experiment(1e4, sample_counts=1.05e4, seed=1)
    roi = (slice(0, 12), slice(0, 12))
    assert not rad.truth[roi].any()  # the region really is sample-free
    stack = np.stack([frame0, frame1])
    t_plain, _ = normalize(stack, opens, darks, frame_axis=0)
    assert float(np.mean(t_plain[1][roi])) == pytest.approx(1.05, rel=0.01)
    t, stats = normalize(stack, opens, darks, frame_axis=0, dose_roi=roi)
    assert stats["dose_factors"][1] / stats["dose_factors"][0] == pytest.approx(1.05, rel=0.005)
    assert stats["dose_roi"] == [[0, 12], [0, 12]]
    assert float(np.mean(t[1][roi])) == pytest.approx(1.0, abs=1e-4)
    assert max(_relative_errors(t[1], rad).values()) < 0.01
    same, _ = normalize(stack, opens, darks, frame_axis=0, dose_roi="0:12,0:12")
    np.testing.assert_array_equal(same, t)


# ------------------------------------------------------------------------- counting


def _crafted():
    dark = np.full((3, 4), 100.0)
    open_beam = np.full((3, 4), 1100.0)
    open_beam[0, 0] = 100.5  # 0.5 counts above the dark: guarded
    open_beam[0, 1] = 100.0  # no beam at all: guarded
    sample = np.full((3, 4), 600.0)
    sample[1, 0] = 50.0  # below the dark current: T = -0.05
    sample[1, 1] = 100.0  # T = 0
    sample[1, 2] = 1300.0  # T = 1.2
    sample[1, 3] = 1100.0  # T = 1 exactly, not above one
    return sample, open_beam, dark


def test_guarded_nonpositive_and_above_one_are_counted_not_hidden():
    sample, open_beam, dark = _crafted()
    t, stats = normalize(sample, open_beam, dark)
    assert np.isnan(t[0, 0]) and np.isnan(t[0, 1])
    assert t[1, 0] == pytest.approx(-0.05) and t[1, 1] == 0.0
    assert t[1, 2] == pytest.approx(1.2) and t[1, 3] == 1.0
    assert (stats["n_guarded"], stats["n_nonpositive"], stats["n_above_one"]) == (2, 2, 1)
    assert stats["n_pixels"] == 12
    assert stats["fraction_guarded"] == pytest.approx(2 / 12)
    assert stats["guard"] == GUARD_COUNTS

    clipped, clip_stats = normalize(sample, open_beam, dark, clip=(0.0, 1.0))
    assert clipped[1, 0] == 0.0 and clipped[1, 2] == 1.0
    assert clip_stats["n_nonpositive"] == 2 and clip_stats["n_above_one"] == 1

    looser, loose_stats = normalize(sample, open_beam, dark, guard=0.25)
    assert loose_stats["n_guarded"] == 1 and looser[0, 0] == pytest.approx(1000.0)


def test_log_makes_nonpositive_nan_or_floored():
    sample, open_beam, dark = _crafted()
    att, stats = normalize(sample, open_beam, dark, log=True)
    assert np.isnan(att[1, 0]) and np.isnan(att[1, 1])
    assert att[1, 2] == pytest.approx(-np.log(1.2))
    assert stats["n_log_undefined"] == 2
    floored, fstats = normalize(sample, open_beam, dark, log=True, floor=1e-3)
    assert floored[1, 0] == pytest.approx(-np.log(1e-3)) and fstats["n_log_undefined"] == 2
    assert np.isnan(floored[0, 0])  # guarded stays NaN


def test_minus_log_values():
    out = minus_log(np.array([[1.0, 0.5], [0.0, np.nan]], np.float64))
    assert out.dtype == np.float32
    assert out[0, 0] == 0.0 and out[0, 1] == pytest.approx(np.log(2.0))
    assert np.isnan(out[1, 0]) and np.isnan(out[1, 1])
    assert minus_log(np.array([-1.0]), floor=0.01)[0] == pytest.approx(-np.log(0.01))
    with pytest.raises(ValueError, match="floor must be a positive"):
        minus_log(np.ones(3), floor=0.0)
    with pytest.raises(TypeError, match="transmission"):
        minus_log("T.tif")


# ------------------------------------------------------------------------- memory, progress


def test_stack_is_processed_without_stack_sized_temporaries():
    rng = np.random.default_rng(0)
    stack = rng.poisson(1000, (16, 128, 128)).astype(np.uint16)
    opens = rng.poisson(1100, (3, 128, 128)).astype(np.uint16)
    dark = np.full((128, 128), 100, np.uint16)
    normalize(stack[:1], opens, dark, frame_axis=0)  # first-call imports are not the point
    tracemalloc.start()
    try:
        t, _ = normalize(stack, opens, dark, frame_axis=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The float32 result plus a few frame-sized arrays; a float32 copy of the stack alone
    # would double it.
    assert peak < 1.4 * t.nbytes, peak / t.nbytes


def test_progress_reports_every_block():
    calls = []
    stack = np.full((4, 16, 16), 500.0)
    normalize(stack, np.full((16, 16), 1000.0), frame_axis=0,
              progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (4, 4) and len(calls) == 4


# ------------------------------------------------------------------------- bad input


def test_swapped_open_beam_and_dark_is_refused():
    _, sample, opens, darks = _experiment(1e2)
    with pytest.raises(ValueError, match=r"not brighter than the dark current in 100 % of pixels; "
                                         r"are the open-beam and dark images swapped\?"):
        normalize(sample, darks, opens)
    with pytest.raises(ValueError, match="open beam holds no counts in 100 %"):
        normalize(sample, np.zeros_like(sample))


def test_shape_mismatches_name_both_shapes():
    sample = np.full((8, 10), 500.0)
    with pytest.raises(ValueError, match=r"open_beam has shape \(8, 9\) but the sample's frames "
                                         r"have shape \(8, 10\)"):
        normalize(sample, np.ones((8, 9)))
    with pytest.raises(ValueError, match=r"dark\[1\] has shape \(3, 3\)"):
        normalize(sample, np.full((8, 10), 900.0), [np.zeros((8, 10)), np.zeros((3, 3))])
    with pytest.raises(ValueError, match=r"sample has shape \(2, 8, 10\) but needs exactly two"):
        normalize(np.ones((2, 8, 10)), np.ones((8, 10)))
    with pytest.raises(ValueError, match="frame_axis and spectral_axis are both axis 0"):
        normalize(np.ones((2, 8, 10)), np.ones((8, 10)), frame_axis=0, spectral_axis=0)
    with pytest.raises(ValueError, match="frame_axis=3 is out of range"):
        normalize(np.ones((2, 8, 10)), np.ones((8, 10)), frame_axis=3)
    with pytest.raises(ValueError, match=r"open_beam has shape \(8, 10\) but the sample's frames "
                                         r"have shape \(8, 10, 4\)"):
        normalize(np.ones((8, 10, 4)), np.ones((8, 10)), spectral_axis=2)


def test_bad_exposures():
    sample, ob, dark = np.full((4, 4), 500.0), np.full((4, 4), 1000.0), np.full((4, 4), 10.0)
    with pytest.raises(ValueError, match=r"exposure\['open_beam'\] must be a positive number of "
                                         r"seconds, got 0"):
        normalize(sample, ob, dark, exposure={"sample": 1.0, "open_beam": 0.0, "dark": 1.0})
    with pytest.raises(ValueError, match=r"exposure\['sample'\] must be a positive number"):
        normalize(sample, ob, exposure={"sample": -2.0, "open_beam": 1.0})
    with pytest.raises(ValueError, match="exposure lacks the time for 'dark'"):
        normalize(sample, ob, dark, exposure={"sample": 1.0, "open_beam": 1.0})
    with pytest.raises(ValueError, match="unknown key"):
        normalize(sample, ob, exposure={"sample": 1.0, "openbeam": 1.0})
    with pytest.raises(ValueError, match=r"gives 2 times but open_beam has 1 entries"):
        normalize(sample, ob, exposure={"sample": 1.0, "open_beam": [1.0, 2.0]})


def test_negative_counts_are_refused_unless_allowed():
    sample, ob = np.full((4, 4), 500.0), np.full((4, 4), 1000.0)
    bad = sample.copy()
    bad[1, 1] = -3.0
    with pytest.raises(ValueError, match=r"sample holds negative values \(minimum -3\).*"
                                         r"allow_negative=True"):
        normalize(bad, ob)
    with pytest.raises(ValueError, match="open_beam holds negative values"):
        normalize(sample, -ob)
    t, stats = normalize(bad, ob, allow_negative=True)
    assert t[1, 1] == pytest.approx(-0.003) and stats["n_nonpositive"] == 1
    # Integer counts that cannot be negative are not even checked.
    normalize(sample.astype(np.uint16), ob.astype(np.uint16))


def test_nan_inputs_are_refused():
    sample, ob, dark = np.full((4, 4), 500.0), np.full((4, 4), 1000.0), np.full((4, 4), 10.0)
    names = ("sample", "open_beam", "dark")
    for index, name in enumerate(names):
        args = [sample.copy(), ob.copy(), dark.copy()]
        args[index][2, 2] = np.nan
        with pytest.raises(ValueError, match=f"{name} holds NaN or infinite values"):
            normalize(*args)
    inf = sample.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="sample holds NaN or infinite"):
        normalize(inf, ob)


def test_bad_dose_roi():
    sample, ob = np.full((20, 30), 500.0), np.full((20, 30), 1000.0)
    with pytest.raises(ValueError, match="dose_roi 0:25,0:10 reaches outside the image of 20 x 30"):
        normalize(sample, ob, dose_roi="0:25,0:10")
    with pytest.raises(ValueError, match="dose_roi 25:,0:10 reaches outside"):
        normalize(sample, ob, dose_roi="25:,0:10")
    with pytest.raises(ValueError, match="dose_roi range 5:5 is empty"):
        normalize(sample, ob, dose_roi=(slice(5, 5), slice(0, 10)))
    with pytest.raises(ValueError, match="must look like y0:y1,x0:x1"):
        normalize(sample, ob, dose_roi="0:10")
    with pytest.raises(ValueError, match="must hold whole numbers"):
        normalize(sample, ob, dose_roi="a:b,0:10")
    with pytest.raises(TypeError, match="two slices"):
        normalize(sample, ob, dose_roi=(0, 10))
    dark_corner = sample.copy()
    dark_corner[:5, :5] = 0.0
    with pytest.raises(ValueError, match="counts inside dose_roi are not positive"):
        normalize(dark_corner, ob, dose_roi="0:5,0:5")
    weak = ob.copy()
    weak[:5, :5] = 0.5
    with pytest.raises(ValueError, match="dose_roi holds only guarded pixels"):
        normalize(sample, weak, dose_roi="0:5,0:5")


def test_bad_options_and_types():
    sample, ob = np.full((4, 4), 500.0), np.full((4, 4), 1000.0)
    with pytest.raises(ValueError, match="combine must be 'median' or 'mean'"):
        normalize(sample, ob, combine="max")
    with pytest.raises(ValueError, match="guard must be a finite number of counts >= 0"):
        normalize(sample, ob, guard=-1)
    with pytest.raises(ValueError, match=r"at most guard=2000 counts in 100 % of pixels"):
        normalize(sample, ob, guard=2000)
    with pytest.raises(TypeError, match="sample must be a numeric array"):
        normalize("sample.tif", ob)
    with pytest.raises(TypeError, match="exposure must be a dict"):
        normalize(sample, ob, exposure=10.0)
    with pytest.raises(ValueError, match="clip must have low < high"):
        normalize(sample, ob, clip=(1.0, 0.0))
    with pytest.raises(ValueError, match="open_beam is an empty list"):
        normalize(sample, [])


def test_simulated_tof_cube_normalized_per_bin_recovers_transmission():
    """The simulator's ToF cube (noise off) divided bin by bin gives its exact transmission."""
    from niseg.simulate import simulate_tof

    cube = simulate_tof(shape=(24, 24), n_bins=30, noise=False, seed=3)
    transmission, _stats = normalize(cube.sample, cube.open_beam, spectral_axis=-1)
    assert transmission.shape == cube.transmission.shape
    np.testing.assert_allclose(transmission, cube.transmission, rtol=1e-5, atol=1e-6)

    noisy = simulate_tof(shape=(48, 48), n_bins=30, counts=2000.0, seed=3)
    measured, _ = normalize(noisy.sample, noisy.open_beam, spectral_axis=-1)
    # Bragg-edge spectra survive: per class, the mean measured spectrum follows the truth.
    for k in range(1, noisy.truth.max() + 1):
        spectrum = np.nanmean(measured[noisy.truth == k], axis=0)
        np.testing.assert_allclose(spectrum, noisy.class_transmission[k - 1], atol=0.02)
