"""Deep-learning segmentation: U-Net 2D/3D, self-configuration, normalization, losses.

Needs PyTorch (the ``deep`` extra: ``pip install 'niseg[deep]'``); the rest of niseg never
imports it.

- :class:`UNet` -- one network class for 2-D and 3-D images; :func:`inflate_2d_to_3d` starts
  a 3-D net from 2-D weights, :func:`encoder_parameters` lists what to freeze when
  fine-tuning;
- :func:`configure` -- patch size, depth, width, batch size and intensity normalization from
  documented rules, returned as a :class:`NetConfig` that records the rules that fired;
- :class:`IntensityNormalizer` -- z-score or percentile-clipped z-score from the training
  images; :func:`choose_normalization` picks one;
- :func:`segmentation_loss` -- cross-entropy, Dice, Dice + cross-entropy and focal losses that
  ignore unlabelled pixels (:data:`IGNORE`); :func:`balanced_class_weights`;
- :func:`augment` with :class:`AugmentConfig` -- geometric, intensity and physics-aware
  (Poisson counting noise, gamma spots, rings, stripes) augmentation on the training device;
- :func:`validation_split` -- an honest validation block from the training images, separated
  from the training pixels by the network's halo; :class:`EarlyStopping`;
- :func:`sliding_window_proba` -- Gaussian-blended patch inference on a grid anchored to image
  coordinates, so tiles agree with the untiled result; :func:`tiling_halo`,
  :func:`window_step`, :func:`gaussian_importance`;
- :class:`UNetSegmenter` -- the Segmenter: self-configured training (class-balanced patches,
  validation block, early stopping, best checkpoint, time budget, fine-tuning), prediction
  through :func:`niseg.tiling.predict_tiled`, save/load as model kind ``"unet"``.
"""

try:
    import torch  # noqa: F401
except ImportError:
    raise ImportError("niseg.deep needs PyTorch: pip install 'niseg[deep]'") from None

from ._augment import augment
from ._augment_config import AugmentConfig
from ._config import NetConfig, configure
from ._infer import gaussian_importance, sliding_window_proba, tiling_halo, window_step
from ._losses import IGNORE, LOSSES, balanced_class_weights, segmentation_loss
from ._net import NORMS, UPSAMPLES, UNet, encoder_parameters, inflate_2d_to_3d
from ._normalize import NORMALIZATIONS, IntensityNormalizer, choose_normalization
from ._segmenter import UNetSegmenter
from ._spots import CNNSpotDetector, train_spot_cnn
from ._train import SCHEDULES
from ._validation import EarlyStopping, ValidationBlock, validation_split

__all__ = [
    "IGNORE",
    "LOSSES",
    "NORMALIZATIONS",
    "NORMS",
    "SCHEDULES",
    "UPSAMPLES",
    "AugmentConfig",
    "CNNSpotDetector",
    "EarlyStopping",
    "IntensityNormalizer",
    "NetConfig",
    "UNet",
    "UNetSegmenter",
    "ValidationBlock",
    "augment",
    "balanced_class_weights",
    "choose_normalization",
    "configure",
    "encoder_parameters",
    "gaussian_importance",
    "inflate_2d_to_3d",
    "segmentation_loss",
    "sliding_window_proba",
    "tiling_halo",
    "train_spot_cnn",
    "validation_split",
    "window_step",
]
