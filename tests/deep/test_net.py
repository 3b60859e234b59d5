"""UNet: shapes, input checks, receptive field, determinism, inflation, encoder, no torch."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from niseg.deep import UNet, encoder_parameters, inflate_2d_to_3d

torch.set_num_threads(1)


def _hide_torch() -> str:
    path = Path(__file__).resolve().parents[1] / "test_no_torch.py"
    spec = importlib.util.spec_from_file_location("_no_torch_helper", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.HIDE_TORCH


def test_import_without_torch_gives_one_clear_sentence(tmp_path):
    code = _hide_torch() + textwrap.dedent(
        """
        try:
            import niseg.deep
        except ImportError as error:
            print("message:", error)
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("message: niseg.deep needs PyTorch: "
                                     "pip install 'niseg[deep]'")


@pytest.mark.parametrize("norm", ["batch", "instance", "group", "none"])
@pytest.mark.parametrize("upsample", ["transpose", "interpolate"])
def test_output_shape_2d(norm, upsample):
    net = UNet(2, 2, 3, depth=2, base_channels=6, norm=norm, upsample=upsample, dropout=0.2)
    out = net(torch.rand(2, 2, 16, 24))
    assert out.shape == (2, 3, 16, 24)
    assert out.dtype == torch.float32


def test_output_shape_3d_and_channel_widths():
    net = UNet(3, 1, 2, depth=2, base_channels=4, norm="group")
    assert net(torch.rand(1, 1, 8, 12, 16)).shape == (1, 2, 8, 12, 16)
    widths = [block[0].out_channels for block in net.encoders]
    assert widths == [4, 8, 16]
    assert isinstance(net.encoders[0][0], torch.nn.Conv3d)
    # group norm uses the largest group count <= 8 dividing the channels
    assert [block[1].num_groups for block in net.encoders] == [4, 8, 8]


def test_input_size_must_be_a_multiple_of_two_to_the_depth():
    net = UNet(depth=3, base_channels=2)
    assert net.size_multiple == 8
    with pytest.raises(ValueError, match=r"spatial shape \(20, 16\).*multiples of 8"):
        net(torch.rand(1, 1, 20, 16))
    with pytest.raises(ValueError, match="2 channels but the UNet expects 1"):
        net(torch.rand(1, 2, 16, 16))
    with pytest.raises(ValueError, match="2-D UNet needs"):
        net(torch.rand(1, 1, 8, 16, 16))


@pytest.mark.parametrize("kwargs, match", [
    ({"spatial_dims": 4}, "spatial_dims must be 2 or 3"),
    ({"depth": 0}, "depth must be an integer from 1 to 6"),
    ({"base_channels": 2.5}, "base_channels must be"),
    ({"norm": "layer"}, "norm must be one of"),
    ({"dropout": 1.0}, "dropout must be"),
    ({"upsample": "pixelshuffle"}, "upsample must be one of"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNet(**kwargs)


def test_config_rebuilds_the_net_and_is_json():
    net = UNet(3, 2, 4, depth=2, base_channels=5, norm="instance", dropout=0.1,
               upsample="interpolate")
    config = json.loads(json.dumps(net.config()))
    again = UNet(**config)
    assert again.config() == net.config()
    assert [p.shape for p in again.parameters()] == [p.shape for p in net.parameters()]


def test_init_is_deterministic_given_the_seed():
    torch.manual_seed(3)
    a = UNet(depth=2, base_channels=4)
    torch.manual_seed(3)
    b = UNet(depth=2, base_channels=4)
    torch.manual_seed(4)
    c = UNet(depth=2, base_channels=4)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    assert not torch.equal(a.head.weight, c.head.weight)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("upsample", ["transpose", "interpolate"])
def test_halo_is_the_exact_reach_of_an_output_pixel(depth, upsample):
    # The gradient of one output pixel is non-zero on the input pixels it depends on; take
    # the widest reach over all positions relative to the pooling grid.
    torch.manual_seed(0)
    net = UNet(2, 1, 1, depth=depth, base_channels=8, norm="none",
               upsample=upsample).double().eval()
    n = 4 * net.halo // net.size_multiple * net.size_multiple
    x = torch.randn(1, 1, 2 * net.size_multiple, n, dtype=torch.float64, requires_grad=True)
    centre, reach = n // 2, 0
    for p in range(net.size_multiple):
        x.grad = None
        net(x)[0, 0, net.size_multiple, centre + p].backward()
        columns = (x.grad[0, 0] != 0).any(0).nonzero().ravel()
        reach = max(reach, centre + p - int(columns.min()), int(columns.max()) - centre - p)
    assert reach <= net.halo
    # max pooling hides at most one pixel of the pair at the outermost edge
    assert reach >= net.halo - 1
    assert net.receptive_field == 2 * net.halo + 1


def test_halo_values():
    assert [UNet(depth=d).halo for d in (1, 2, 3, 4, 5)] == [9, 23, 51, 107, 219]


def test_halo_is_a_safe_context_for_tiles():
    # Outputs far enough from a tile edge equal the whole-image outputs.
    torch.manual_seed(1)
    net = UNet(2, 1, 2, depth=2, base_channels=4, norm="batch").eval()
    image = torch.rand(1, 1, 96, 96)
    with torch.no_grad():
        whole = net(image)
        tile = net(image[:, :, :, 24:96])  # origin is a multiple of 4
    keep = slice(net.halo, None)
    assert torch.allclose(whole[..., 24:][..., keep], tile[..., keep], atol=1e-5)


def test_inflated_3d_net_matches_the_2d_net_on_a_constant_volume():
    torch.manual_seed(2)
    net_2d = UNet(2, 1, 3, depth=2, base_channels=4, norm="batch")
    with torch.no_grad():  # non-trivial running statistics, as after training
        for module in net_2d.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    net_2d.eval()
    net_3d = UNet(3, 1, 3, depth=2, base_channels=4, norm="batch").eval()
    state = inflate_2d_to_3d(net_2d.state_dict(), net_3d)
    net_3d.load_state_dict(state)
    conv2 = net_2d.encoders[0][0].weight
    conv3 = net_3d.encoders[0][0].weight
    assert conv3.shape == (4, 1, 3, 3, 3)
    assert torch.allclose(conv3.sum(2), conv2)
    assert torch.equal(net_3d.ups[0].up.weight[:, :, 0], net_2d.ups[0].up.weight)
    image = torch.rand(1, 1, 16, 24)
    volume = image[:, :, None].expand(1, 1, 64, 16, 24).contiguous()
    with torch.no_grad():
        out_2d = net_2d(image)
        out_3d = net_3d(volume)
    middle = out_3d[:, :, 28:36]  # > halo (23) from the top and bottom slices
    assert torch.allclose(middle, out_2d[:, :, None].expand_as(middle), atol=1e-5)
    # near the top the zero padding along z makes them differ
    assert not torch.allclose(out_3d[:, :, 0], out_2d, atol=1e-3)


def test_inflation_accepts_numpy_weights_and_checks_shapes():
    net_2d = UNet(2, 1, 2, depth=1, base_channels=4)
    numpy_state = {k: v.numpy() for k, v in net_2d.state_dict().items()}
    net_3d = UNet(3, 1, 2, depth=1, base_channels=4)
    net_3d.load_state_dict(inflate_2d_to_3d(numpy_state, net_3d))
    with pytest.raises(ValueError, match="same depth"):
        inflate_2d_to_3d(net_2d.state_dict(), UNet(3, 1, 2, depth=2, base_channels=4))
    with pytest.raises(ValueError, match="needs"):
        inflate_2d_to_3d(net_2d.state_dict(), UNet(3, 1, 2, depth=1, base_channels=8))
    with pytest.raises(ValueError, match="3-D UNet"):
        inflate_2d_to_3d(net_2d.state_dict(), net_2d)


def test_encoder_parameters_freeze_the_down_path_only():
    net = UNet(2, 1, 2, depth=2, base_channels=4)
    encoder = encoder_parameters(net)
    ids = {id(p) for p in encoder}
    assert ids == {id(p) for p in net.encoders.parameters()}
    assert all(id(p) not in ids for p in net.decoders.parameters())
    for p in encoder:
        p.requires_grad_(False)
    before = [p.detach().clone() for p in net.parameters()]
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net(torch.rand(2, 1, 16, 16)).sum().backward()
    optimizer.step()
    changed = [not torch.equal(b, p) for b, p in zip(before, net.parameters())]
    frozen = [id(p) in ids for p in net.parameters()]
    assert not any(c for c, f in zip(changed, frozen) if f)
    assert any(c for c, f in zip(changed, frozen) if not f)
    with pytest.raises(TypeError, match="niseg.deep.UNet"):
        encoder_parameters(torch.nn.Linear(2, 2))


def test_tiny_net_learns_a_threshold():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    image = rng.normal(0, 1, (4, 1, 16, 16)).astype(np.float32)
    target = (image[:, 0] > 0).astype(np.int64)
    net = UNet(2, 1, 2, depth=1, base_channels=4)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    x, y = torch.from_numpy(image), torch.from_numpy(target)
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(x).argmax(1) == y).float().mean()
    assert accuracy > 0.95
