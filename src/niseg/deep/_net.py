"""U-Net for 2-D and 3-D images, encoder access for fine-tuning and 2-D to 3-D inflation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

#: Normalization layers ``UNet(norm=...)`` accepts.
NORMS = ("batch", "instance", "group", "none")

#: Up-sampling layers ``UNet(upsample=...)`` accepts.
UPSAMPLES = ("transpose", "interpolate")

_MAX_GROUPS = 8


def _groups(channels: int) -> int:
    # GroupNorm needs a group count dividing the channels; take the largest one up to 8.
    return max(g for g in range(1, _MAX_GROUPS + 1) if channels % g == 0)


def _norm_layer(norm: str, spatial_dims: int, channels: int) -> nn.Module:
    if norm == "batch":
        return (nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d)(channels)
    if norm == "instance":
        return (nn.InstanceNorm2d if spatial_dims == 2 else nn.InstanceNorm3d)(
            channels, affine=True)
    if norm == "group":
        return nn.GroupNorm(_groups(channels), channels)
    return nn.Identity()


class _Block(nn.Sequential):
    """Two 3x3(x3) convolutions, each followed by the normalization and a ReLU."""

    def __init__(self, spatial_dims: int, in_ch: int, out_ch: int, norm: str) -> None:
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        # A bias before a normalization layer is cancelled by its mean subtraction.
        bias = norm == "none"
        super().__init__(
            conv(in_ch, out_ch, 3, padding=1, bias=bias),
            _norm_layer(norm, spatial_dims, out_ch),
            nn.ReLU(inplace=True),
            conv(out_ch, out_ch, 3, padding=1, bias=bias),
            _norm_layer(norm, spatial_dims, out_ch),
            nn.ReLU(inplace=True),
        )


class _Up(nn.Module):
    """Double the spatial size and halve the channels."""

    def __init__(self, spatial_dims: int, in_ch: int, out_ch: int, mode: str) -> None:
        super().__init__()
        if mode == "transpose":
            tconv = nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
            self.up = tconv(in_ch, out_ch, kernel_size=2, stride=2)
        else:
            conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear" if spatial_dims == 2 else "trilinear",
                            align_corners=False),
                conv(in_ch, out_ch, kernel_size=1),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class UNet(nn.Module):
    """U-Net for 2-D or 3-D images, returning per-class logits.

    The encoder has ``depth + 1`` levels of two 3x3 (3x3x3) convolutions, each followed by
    the normalization and a ReLU, with 2x2(x2) max pooling between levels; channels start
    at ``base_channels`` and double per level. Dropout acts at the bottleneck. The decoder
    doubles the size (transposed convolution, or linear interpolation and a 1x1
    convolution), concatenates the encoder features of the same level and applies another
    two-convolution block; a 1x1 convolution gives the logits.

    Parameters
    ----------
    spatial_dims : {2, 3}
        2 for images ``(B, C, M, N)``, 3 for volumes ``(B, C, M, N, P)``.
    in_channels : int
        Input channels ``C``.
    out_channels : int
        Output channels (classes ``K``; 1 for a single foreground logit).
    depth : int
        Number of poolings (1 to 6); every spatial size must be a multiple of
        ``2 ** depth`` (:attr:`size_multiple`).
    base_channels : int
        Channels of the first level.
    norm : {"batch", "instance", "group", "none"}
        Normalization after every convolution; ``"group"`` uses the largest number of
        groups up to 8 that divides the channels.
    dropout : float
        Channel dropout probability at the bottleneck (0 to < 1).
    upsample : {"transpose", "interpolate"}
        Up-sampling of the decoder: a 2x2(x2) transposed convolution of stride 2, or linear
        interpolation followed by a 1x1 convolution.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> net = UNet(2, 1, 3, depth=2, base_channels=4)
    >>> net(torch.zeros(1, 1, 32, 48)).shape
    torch.Size([1, 3, 32, 48])
    >>> net.size_multiple, net.halo, net.receptive_field
    (4, 23, 47)
    >>> UNet(**net.config()).config() == net.config()
    True
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 2,
        *,
        depth: int = 3,
        base_channels: int = 16,
        norm: str = "batch",
        dropout: float = 0.0,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        for name, value, low, high in (("in_channels", in_channels, 1, None),
                                       ("out_channels", out_channels, 1, None),
                                       ("depth", depth, 1, 6),
                                       ("base_channels", base_channels, 1, None)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) \
                    or value < low or (high is not None and value > high):
                expected = f"an integer from {low} to {high}" if high else \
                    f"an integer >= {low}"
                raise ValueError(f"{name} must be {expected}, got {value!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLES)}, got "
                             f"{upsample!r}")
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a number from 0 to below 1, got {dropout!r}")
        self.spatial_dims = int(spatial_dims)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.depth = int(depth)
        self.base_channels = int(base_channels)
        self.norm = norm
        self.dropout = float(dropout)
        self.upsample = upsample

        widths = [self.base_channels * 2**level for level in range(self.depth + 1)]
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        pool = nn.MaxPool2d if spatial_dims == 2 else nn.MaxPool3d
        drop = nn.Dropout2d if spatial_dims == 2 else nn.Dropout3d
        self.encoders = nn.ModuleList(
            _Block(spatial_dims, self.in_channels if level == 0 else widths[level - 1],
                   widths[level], norm)
            for level in range(self.depth + 1))
        self.pool = pool(2)
        self.bottleneck_dropout = drop(self.dropout) if self.dropout > 0 else nn.Identity()
        self.ups = nn.ModuleList(_Up(spatial_dims, widths[level + 1], widths[level], upsample)
                                 for level in range(self.depth))
        self.decoders = nn.ModuleList(_Block(spatial_dims, 2 * widths[level], widths[level], norm)
                                      for level in range(self.depth))
        self.head = conv(widths[0], self.out_channels, kernel_size=1)

    # -- description -------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-able dict: ``UNet(**net.config())`` rebuilds it."""
        return {"spatial_dims": self.spatial_dims, "in_channels": self.in_channels,
                "out_channels": self.out_channels, "depth": self.depth,
                "base_channels": self.base_channels, "norm": self.norm,
                "dropout": self.dropout, "upsample": self.upsample}

    @property
    def size_multiple(self) -> int:
        """Every spatial size of an input must be a multiple of this (``2 ** depth``)."""
        return 2**self.depth

    @property
    def halo(self) -> int:
        """Receptive-field radius in pixels: an output pixel depends only on input pixels at
        most this far away along every axis.

        Computed exactly from the layers: the window of input pixels an output pixel can
        depend on is traced backwards through every convolution (one pixel of the current
        level per 3x3 kernel side), pooling (level pixel ``q`` reads ``2q`` and ``2q + 1``),
        up-sampling (a transposed convolution reads pixel ``i // 2``; linear interpolation
        also its neighbour on the side of ``i``) and skip connection (the union of both branches), for each of the
        ``2 ** depth`` positions of an output pixel relative to the pooling grid; the halo
        is the largest distance from the output pixel to either end of its window.
        """
        return _halo(self.depth, self.upsample)

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the centred window holding every input pixel an output pixel
        can depend on, ``2 * halo + 1`` (see :attr:`halo` for how it is computed)."""
        return 2 * self.halo + 1

    # -- forward -----------------------------------------------------------------------------

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError unless ``x`` is ``(B, in_channels, *spatial)`` with every spatial
        size a multiple of :attr:`size_multiple`.

        Examples
        --------
        >>> import torch
        >>> UNet(depth=2).check_input(torch.zeros(1, 1, 30, 32))
        Traceback (most recent call last):
        ...
        ValueError: input has spatial shape (30, 32) but a UNet of depth 2 needs sizes that are multiples of 4
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(f"input has shape {tuple(x.shape)} but a {self.spatial_dims}-D "
                             f"UNet needs (batch, channels, {self.spatial_dims} spatial axes)")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"input has {x.shape[1]} channels but the UNet expects "
                             f"{self.in_channels}")
        spatial = tuple(int(s) for s in x.shape[2:])
        if any(s % self.size_multiple or s == 0 for s in spatial):
            raise ValueError(f"input has spatial shape {spatial} but a UNet of depth "
                             f"{self.depth} needs sizes that are multiples of "
                             f"{self.size_multiple}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, out_channels, *spatial)`` of an input ``(B, in_channels, *spatial)``."""
        self.check_input(x)
        skips = []
        for level, block in enumerate(self.encoders):
            x = block(x)
            if level < self.depth:
                skips.append(x)
                x = self.pool(x)
        x = self.bottleneck_dropout(x)
        for level in reversed(range(self.depth)):
            x = self.ups[level](x)
            x = self.decoders[level](torch.cat([skips[level], x], dim=1))
        return self.head(x)

    # -- fine-tuning -------------------------------------------------------------------------

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the encoder (every down level and the bottleneck), for freezing."""
        return self.encoders.parameters()


def encoder_parameters(net: UNet) -> list[nn.Parameter]:
    """The encoder's parameters (every down level and the bottleneck) of a :class:`UNet`.

    Fine-tuning a pretrained model often trains the decoder first with these frozen
    (``requires_grad = False``), then everything.

    Parameters
    ----------
    net : UNet
        The network.

    Returns
    -------
    list of torch.nn.Parameter

    Examples
    --------
    >>> net = UNet(depth=2, base_channels=4)
    >>> frozen = [p.requires_grad_(False) for p in encoder_parameters(net)]
    >>> len(frozen), sum(p.requires_grad for p in net.parameters())
    (18, 18)
    """
    if not isinstance(net, UNet):
        raise TypeError(f"net must be a niseg.deep.UNet, got {type(net).__name__}")
    return list(net.encoder_parameters())


def inflate_2d_to_3d(state_dict_2d: Mapping[str, Any], net_3d: UNet) -> dict[str, torch.Tensor]:
    """State dict for a 3-D :class:`UNet` from the weights of a 2-D one of the same shape.

    Every ``k x k`` convolution kernel becomes ``k x k x k`` by repeating it along the new
    first spatial axis (z) and dividing by ``k``, as in I3D: on a volume that is constant
    along z the 3-D convolution then sums to the 2-D one, so away from the top and bottom
    slices (about :attr:`UNet.halo` of them) the 3-D net gives the 2-D net's output on every
    slice (exactly so with batch normalization in evaluation mode; instance and group
    normalization compute their statistics over the volume). A transposed convolution of
    kernel 2 and stride 2 gives each output voxel one tap along z, so its kernel is
    repeated without division. Normalization weights, biases and running statistics are
    copied.

    Parameters
    ----------
    state_dict_2d : mapping of str to tensor or ndarray
        ``net_2d.state_dict()`` (or the tensors of a model file) of a 2-D UNet with the same
        depth, channels, normalization and up-sampling as ``net_3d``.
    net_3d : UNet
        The 3-D network whose state dict is built (it is not modified).

    Returns
    -------
    dict of str to torch.Tensor
        Load it with ``net_3d.load_state_dict(...)``.

    Examples
    --------
    >>> import torch
    >>> net_2d = UNet(2, 1, 2, depth=1, base_channels=4).eval()
    >>> net_3d = UNet(3, 1, 2, depth=1, base_channels=4).eval()
    >>> _ = net_3d.load_state_dict(inflate_2d_to_3d(net_2d.state_dict(), net_3d))
    >>> image = torch.rand(1, 1, 16, 16)
    >>> volume = image[:, :, None].expand(1, 1, 32, 16, 16).contiguous()
    >>> with torch.no_grad():
    ...     diff = net_3d(volume)[:, :, 16] - net_2d(image)
    >>> float(diff.abs().max()) < 1e-5
    True
    """
    if not isinstance(net_3d, UNet):
        raise TypeError(f"net_3d must be a niseg.deep.UNet, got {type(net_3d).__name__}")
    if net_3d.spatial_dims != 3:
        raise ValueError(f"net_3d must be a 3-D UNet, got spatial_dims={net_3d.spatial_dims}")
    if not isinstance(state_dict_2d, Mapping):
        raise TypeError(f"state_dict_2d must be a mapping of names to tensors, got "
                        f"{type(state_dict_2d).__name__}")
    modules = dict(net_3d.named_modules())
    out: dict[str, torch.Tensor] = {}
    for key, target in net_3d.state_dict().items():
        if key not in state_dict_2d:
            raise ValueError(f"state_dict_2d has no '{key}'; the 2-D net must have the same "
                             "depth, channels, normalization and up-sampling as net_3d")
        source = torch.as_tensor(np.asarray(state_dict_2d[key]) if not isinstance(
            state_dict_2d[key], torch.Tensor) else state_dict_2d[key])
        module = modules.get(key.rpartition(".")[0])
        if source.shape == target.shape:
            out[key] = source.detach().clone().to(target.dtype)
            continue
        conv = isinstance(module, (nn.Conv3d, nn.ConvTranspose3d))
        if not (conv and key.endswith("weight") and source.ndim == 4
                and source.shape[:2] == target.shape[:2]
                and tuple(source.shape[2:]) == tuple(target.shape[3:])):
            raise ValueError(f"state_dict_2d['{key}'] has shape {tuple(source.shape)} but the "
                             f"3-D net needs {tuple(target.shape)} inflated from it; the nets "
                             "must have the same depth and widths")
        k = target.shape[2]
        taps = k / module.stride[0] if isinstance(module, nn.ConvTranspose3d) else k
        weight = source.detach().to(target.dtype).unsqueeze(2).repeat(1, 1, k, 1, 1) / taps
        out[key] = weight.contiguous()
    extra = sorted(set(state_dict_2d) - set(out))
    if extra:
        raise ValueError(f"state_dict_2d has '{extra[0]}', which net_3d lacks; the nets must "
                         "have the same depth and widths")
    return out


def _halo(depth: int, upsample: str) -> int:
    """Largest one-sided reach of an output pixel's input window (see ``UNet.halo``)."""
    linear = upsample == "interpolate"

    def block(lo: int, hi: int) -> tuple[int, int]:
        return lo - 2, hi + 2

    def encoder(level: int, lo: int, hi: int) -> tuple[int, int]:
        # Input window (full resolution) of encoder-level output pixels lo..hi.
        lo, hi = block(lo, hi)
        if level == 0:
            return lo, hi
        return encoder(level - 1, 2 * lo, 2 * hi + 1)

    def decoder(level: int, lo: int, hi: int) -> tuple[int, int]:
        # Input window of the decoder output at `level` (the bottleneck when level == depth).
        if level == depth:
            return encoder(depth, lo, hi)
        lo, hi = block(lo, hi)
        skip = encoder(level, lo, hi)
        # Linear interpolation (align_corners=False) puts an even pixel 2j between coarse
        # pixels j - 1 and j, an odd one 2j + 1 between j and j + 1.
        up = decoder(level + 1, lo // 2 - (linear and lo % 2 == 0), hi // 2 + (linear and hi % 2))
        return min(skip[0], up[0]), max(skip[1], up[1])

    reach = 0
    for p in range(2**depth):
        lo, hi = decoder(0, p, p)
        reach = max(reach, p - lo, hi - p)
    return reach
