import base64
import re
import struct

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import niseg
from niseg.metrics import segmentation_report
from niseg.report import figure_to_png_bytes, overview_figure, save_figure, write_html_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _scene(shape=(48, 64), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    disc = np.hypot(yy - shape[0] / 2, xx - shape[1] / 2) < min(shape) / 3
    image = disc * 1.0 + rng.normal(0, 0.2, shape)
    truth = (disc * 255).astype(np.uint8)
    result = (image > 0.5).astype(np.uint8)
    proba = 1 / (1 + np.exp(-(image - 0.5) * 5))
    return image.astype(np.float32), truth, result, proba


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


# --------------------------------------------------------------------------- overview figure
@pytest.mark.parametrize(
    "given, expected_axes",
    [
        ((), 2),  # image, histogram
        (("result",), 4),  # + result, overlay
        (("truth",), 4),  # + truth, overlay
        (("proba",), 3),  # + probability, no overlay
        (("truth", "result"), 5),
        (("truth", "result", "proba"), 6),
    ],
)
def test_overview_figure_panel_count(given, expected_axes):
    image, truth, result, proba = _scene()
    inputs = {"truth": truth, "result": result, "proba": proba}
    fig = overview_figure(image, **{k: inputs[k] for k in given})
    assert isinstance(fig, Figure)
    assert isinstance(fig.canvas, FigureCanvasAgg)
    assert len(fig.axes) == expected_axes
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "image" and titles[-1] == "histogram"
    assert ("overlay" in titles) == ("truth" in given or "result" in given)


def test_overview_figure_does_not_touch_pyplot():
    before = plt.get_fignums()
    image, truth, result, _ = _scene()
    fig = overview_figure(image, truth=truth, result=result)
    figure_to_png_bytes(fig)
    assert plt.get_fignums() == before


def test_overview_figure_levels_title_and_contrast():
    image, _truth, result, _ = _scene()
    fig = overview_figure(image, result=result, levels=[0.25, 0.75], title="two levels")
    assert fig.get_suptitle() == "two levels"
    hist = fig.axes[-1]
    vertical = sorted(line.get_xdata()[0] for line in hist.get_lines())
    assert vertical == [0.25, 0.75]
    assert [t.get_text() for t in hist.get_legend().get_texts()] == ["level 0.25", "level 0.75"]
    assert hist.get_yscale() == "log"
    # robust 1-99 percentile contrast on the image panel
    lo, hi = fig.axes[0].images[0].get_clim()
    assert (lo, hi) == pytest.approx(tuple(np.percentile(image, [1, 99])))
    # a single number is one level
    fig = overview_figure(image, levels=0.5)
    assert [line.get_xdata()[0] for line in fig.axes[-1].get_lines()] == [0.5]


def test_overview_figure_binary_colours_match_and_overlay_background_is_clear():
    image, truth, result, _ = _scene()
    fig = overview_figure(image, truth=truth, result=result)
    truth_rgba = fig.axes[1].images[0].get_array()
    result_rgba = fig.axes[2].images[0].get_array()
    both = (truth > 0) & (result > 0)
    # a 0/255 truth and a 0/1 result show their foreground in the same colour
    np.testing.assert_array_equal(truth_rgba[both][0], result_rgba[both][0])
    assert np.all(truth_rgba[truth == 0] == [0, 0, 0, 1])
    overlay = fig.axes[3]
    assert overlay.get_title() == "overlay"
    fill = overlay.images[1].get_array()
    assert np.all(fill[result == 0][:, 3] == 0)
    assert np.all(fill[result > 0][:, 3] > 0)
    assert len(overlay.collections) >= 2  # result and truth outlines


def test_overview_figure_multiclass_uses_one_colour_per_class():
    image, *_ = _scene()
    result = np.digitize(image, [0.3, 0.7]).astype(np.uint8) + 1  # classes 1..3
    truth = result.copy()
    truth[:5] = 0
    fig = overview_figure(image, truth=truth, result=result)
    rgba = fig.axes[2].images[0].get_array().reshape(-1, 4)
    colours = {tuple(c) for c in rgba.tolist()}
    assert len(colours) == 3
    assert fig.axes[2].get_title() == "result (3 classes)"
    truth_rgba = fig.axes[1].images[0].get_array()
    same = truth > 0
    np.testing.assert_array_equal(truth_rgba[same], fig.axes[2].images[0].get_array()[same])


def test_overview_figure_odd_inputs():
    image, _truth, result, _ = _scene()
    with_nan = image.copy()
    with_nan[:3] = np.nan
    assert len(overview_figure(with_nan, result=result).axes) == 4
    assert len(overview_figure(np.ones((20, 30), np.uint16)).axes) == 2
    assert len(overview_figure(image > 0.5, result=np.zeros((48, 64), np.uint8)).axes) == 4
    instances = np.arange(48 * 64).reshape(48, 64) % 37  # more classes than outlines drawn
    assert len(overview_figure(image, result=instances, truth=instances).axes) == 5
    tall = np.zeros((3000, 20), np.float32)
    fig = overview_figure(tall, result=(tall > 0).astype(np.uint8))
    assert max(fig.axes[0].images[0].get_array().shape) <= 1024


def test_overview_figure_validation():
    image, _, _, _ = _scene()
    with pytest.raises(ValueError, match=r"image must be a 2D \(M, N\) image but has shape"):
        overview_figure(np.zeros((3, 8, 8)))
    message = r"result has shape \(8, 8\) but image has shape \(48, 64\)"
    with pytest.raises(ValueError, match=message):
        overview_figure(image, result=np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"pass one class, e.g. proba\[..., 1\]"):
        overview_figure(image, proba=np.zeros((48, 64, 2)))
    with pytest.raises(ValueError, match="^truth contains NaN values$"):
        overview_figure(image, truth=np.full((48, 64), np.nan))
    with pytest.raises(ValueError, match="^proba contains NaN values$"):
        overview_figure(image, proba=np.full((48, 64), np.nan))
    with pytest.raises(ValueError, match="^image is empty$"):
        overview_figure(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="image has no finite values"):
        overview_figure(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="levels must be finite"):
        overview_figure(image, levels=[np.nan])
    with pytest.raises(TypeError, match="levels must be numbers"):
        overview_figure(image, levels=["a"])
    with pytest.raises(TypeError, match="title must be a string"):
        overview_figure(image, title=3)
    with pytest.raises(TypeError, match="image must be a numeric or boolean array"):
        overview_figure(np.array([["a", "b"]]))


# --------------------------------------------------------------------------- saving figures
def test_figure_to_png_bytes_signature_and_dpi():
    fig = overview_figure(_scene()[0])
    png = figure_to_png_bytes(fig)
    assert png.startswith(PNG_SIGNATURE)
    width, height = _png_size(png)
    half = _png_size(figure_to_png_bytes(fig, dpi=50))
    assert half == (pytest.approx(width / 2, abs=1), pytest.approx(height / 2, abs=1))
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure"):
        figure_to_png_bytes("not a figure")
    with pytest.raises(ValueError, match="dpi must be a number between 1 and 2400"):
        figure_to_png_bytes(fig, dpi=0)


def test_save_figure_atomic_and_refuses_existing(tmp_path):
    fig = overview_figure(_scene()[0])
    out = save_figure(fig, tmp_path / "overview.png")
    assert out == tmp_path / "overview.png"
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(FileExistsError, match="already exists"):
        save_figure(fig, out)
    out.write_bytes(b"old")
    save_figure(fig, out, overwrite=True)
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    assert save_figure(fig, tmp_path / "overview.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overview.pdf", "overview.png"]
    with pytest.raises(ValueError, match=r"must end in \.png, \.pdf or \.svg"):
        save_figure(fig, tmp_path / "overview.jpg")
    with pytest.raises(ValueError, match="does not exist"):
        save_figure(fig, tmp_path / "missing" / "overview.png")


# --------------------------------------------------------------------------- HTML report
def test_html_report_is_self_contained(tmp_path):
    image, truth, result, proba = _scene()
    fig = overview_figure(image, truth=truth, result=result, proba=proba, levels=[0.5])
    png = figure_to_png_bytes(fig)
    scores = segmentation_report(truth, result, proba=proba)
    path = write_html_report(
        tmp_path / "report.html",
        title="Disc <test> & friends",
        sections=[
            {"heading": "Intro", "text": "first <script>alert('x')</script>\n\nsecond paragraph"},
            {"heading": "Overview", "figure": fig},
            {"heading": "Given bytes", "figure": png},
            {"heading": "Scores", "table": {"dice": 0.912345678, "n": 12345, "ok": True,
                                            "none": None, "confusion": [[1, 2], [3, 4]]}},
            {"heading": "Arrays", "table": {"levels": np.array([0.123456, 2.0]),
                                            "one": np.float32(1.5), "path": tmp_path.name}},
            {"heading": "Methods", "table": [{"method": "a", "dice": 0.5},
                                             {"method": "b", "iou": 1 / 3}]},
            {"heading": "Full report", "table": scores},
        ],
    )
    assert path == tmp_path / "report.html"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # nothing that a browser could fetch
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "<link" not in text and "@import" not in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert base64.b64decode(sources[1].split(",", 1)[1]) == png
    assert base64.b64decode(sources[0].split(",", 1)[1]).startswith(PNG_SIGNATURE)
    # text escaped, paragraphs kept
    assert "first &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "<p>second paragraph</p>" in text
    assert "<title>Disc &lt;test&gt; &amp; friends</title>" in text
    # tables: 4 significant digits, ints as they are, nested lists, rows from dict lists
    assert ">0.9123<" in text and ">12345<" in text and ">[[1, 2], [3, 4]]<" in text
    assert "<th>method</th><th>dice</th><th>iou</th>" in text
    assert ">0.3333<" in text and ">[0.1235, 2]<" in text and ">1.5<" in text
    assert f">{scores['dice']:.4g}<" in text
    # footer
    assert f"niseg {niseg.__version__}" in text
    assert re.search(r"on \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", text)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_html_report_refuses_existing_and_overwrites(tmp_path):
    out = tmp_path / "report.html"
    write_html_report(out, title="one", sections=[{"heading": "h"}])
    with pytest.raises(FileExistsError, match="already exists"):
        write_html_report(out, title="two", sections=[])
    assert "<h1>one</h1>" in out.read_text()
    write_html_report(out, title="two", sections=[], overwrite=True)
    assert "<h1>two</h1>" in out.read_text()


def test_html_report_validates_sections(tmp_path):
    out = tmp_path / "report.html"
    cases = [
        ([{"heading": "h", "image": 1}], ValueError, r"sections\[0\] has unknown key"),
        ([{"text": "no heading"}], TypeError, r"sections\[0\]\['heading'\] must be a string"),
        ([{"heading": "h", "figure": b"GIF89a"}], ValueError, "not a PNG image"),
        ([{"heading": "h", "figure": 3}], TypeError, "must be a matplotlib Figure or PNG bytes"),
        ([{"heading": "h", "table": 3}], TypeError, r"\['table'\] must be a dict or a list"),
        ([{"heading": "h", "table": [1, 2]}], TypeError, r"\['table'\] must be a dict or a list"),
        ([{"heading": "h", "text": 5}], TypeError, r"\['text'\] must be a string"),
        (["h"], TypeError, r"sections\[0\] must be a dict"),
        ({"heading": "h"}, TypeError, "sections must be a list of dicts"),
    ]
    for sections, error, message in cases:
        with pytest.raises(error, match=message):
            write_html_report(out, title="t", sections=sections)
    with pytest.raises(TypeError, match="title must be a string"):
        write_html_report(out, title=None, sections=[])
    assert not out.exists()


def test_panels_figure_shapes_outlines_and_errors():
    from niseg.report import panels_figure

    rng = np.random.default_rng(0)
    raw = rng.random((40, 50))
    mask = np.zeros((40, 50), bool)
    mask[10:20, 10:20] = True
    fig = panels_figure(
        [("raw", raw), ("normalized", raw / 2), ("cleaned", raw / 3)],
        outlines=[("spots", mask)],
        shared_contrast=[True, True, False],
        title="pipeline",
    )
    assert [ax.get_title() for ax in fig.axes] == ["raw", "normalized", "cleaned"]
    assert len(fig.legends) == 1
    # the two shared panels use the first one's grey scale
    assert fig.axes[0].images[0].get_clim() == fig.axes[1].images[0].get_clim()
    assert fig.axes[2].images[0].get_clim() != fig.axes[0].images[0].get_clim()
    with pytest.raises(ValueError, match="shape"):
        panels_figure([("a", raw), ("b", raw[:, :10])])
    with pytest.raises(ValueError, match="at least one"):
        panels_figure([])
    with pytest.raises(TypeError, match="pair"):
        panels_figure([raw])
    only_second = panels_figure([("a", raw), ("b", raw)], outlines=[("m", mask, [1])])
    assert not only_second.axes[0].collections and only_second.axes[1].collections
    with pytest.raises(ValueError, match="panel index"):
        panels_figure([("a", raw)], outlines=[("m", mask, [3])])
