"""`niseg train --method unet`: build, train and describe a U-Net (PyTorch, imported lazily)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._app import _progress
from ._train_report import labelled_pixels, prediction_section, training_data_sections

LOSSES = ("dice_ce", "ce", "dice", "focal")
AUGMENTS = ("none", "light", "default", "physics")
DEVICES = ("cpu", "cuda", "auto")

_POSITIVE = ("epochs", "patience", "patch", "depth", "base_channels", "batch_size",
             "iterations_per_epoch", "jobs")


def check_device(device: str, option: str = "--device") -> None:
    """Refuse an unknown device name, or CUDA where PyTorch sees no GPU, in one sentence."""
    if device not in DEVICES:
        raise ValueError(f"{option} must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"{option} cuda was asked for but PyTorch sees no CUDA GPU on "
                             f"this machine; use {option} cpu or auto")


def make_unet(options: dict[str, Any], *, two_d: bool, seed: int) -> Any:
    """A UNetSegmenter from the command-line values, checked flag by flag."""
    import niseg.deep  # noqa: F401  (fails with the one-sentence "needs PyTorch" message)
    from niseg.deep import UNetSegmenter

    for name in _POSITIVE:
        value = options[name]
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive whole number, "
                             f"got {value}")
    if options["freeze_encoder_epochs"] < 0:
        raise ValueError(f"--freeze-encoder-epochs must be 0 or more, got "
                         f"{options['freeze_encoder_epochs']}")
    for name in ("time_budget", "learning_rate"):
        value = options[name]
        if value is not None and not (np.isfinite(value) and value > 0):
            raise ValueError(f"--{name.replace('_', '-')} must be a positive number, got "
                             f"{value}")
    fraction = options["validation"]
    if not (np.isfinite(fraction) and 0 <= fraction <= 0.5):
        raise ValueError(f"--validation must be a fraction from 0 (no validation) to 0.5, "
                         f"got {fraction}")
    if options["loss"] not in LOSSES:
        raise ValueError(f"--loss must be one of {', '.join(LOSSES)}, got {options['loss']!r}")
    if options["augment"] not in AUGMENTS:
        raise ValueError(f"--augment must be one of {', '.join(AUGMENTS)}, got "
                         f"{options['augment']!r}")
    augment: Any = options["augment"]
    counts = options["data_counts"]
    if counts is not None:
        if augment != "physics":
            raise ValueError("--data-counts sets the counts of the physics augmentation; give "
                             "it with --augment physics")
        if not (np.isfinite(counts) and 20 < counts <= 1e7):
            raise ValueError(f"--data-counts must be the open-beam counts per pixel of the "
                             f"training images, above 20 and at most 1e7, got {counts}")
        from niseg.deep import AugmentConfig

        # Levels from 20 counts (the preset's lowest) up to the data's own: real counts.
        augment = AugmentConfig.preset(
            "physics", poisson_units="transmission", poisson_data_counts=float(counts),
            poisson_counts_range=(20.0, float(counts)))
    if options["class_weights"] not in (None, "balanced"):
        raise ValueError(f"--class-weights must be 'balanced' (inverse class frequency), got "
                         f"{options['class_weights']!r}")
    check_device(options["device"])
    init = options["init"]
    if init is not None:
        _check_init(init)
    return UNetSegmenter(
        spatial_dims=2 if two_d else None, depth=options["depth"],
        base_channels=options["base_channels"], patch_size=options["patch"],
        batch_size=options["batch_size"], loss=options["loss"],
        class_weights=options["class_weights"], learning_rate=options["learning_rate"],
        epochs=options["epochs"], iterations_per_epoch=options["iterations_per_epoch"],
        time_budget=options["time_budget"], validation=fraction or None,
        patience=options["patience"], augment=augment, device=options["device"],
        init=init, freeze_encoder_epochs=options["freeze_encoder_epochs"],
        random_state=seed, n_threads=options["jobs"])


def _check_init(init: str) -> None:
    from niseg.models import read_model_info

    if not Path(init).is_file():
        raise ValueError(f"--init model file '{init}' does not exist")
    kind = read_model_info(init)["kind"]
    if kind != "unet":
        raise ValueError(f"--init '{init}' is a {kind} model; fine-tuning starts from a U-Net "
                         "model file (trained with --method unet)")


def check_patch(data: list[dict[str, Any]], patch: int | None) -> None:
    """Refuse, before training, an image smaller than the patch the user asked for."""
    if patch is None:
        return
    for d in data:
        spatial = d["images"][0].shape[: d["spatial"]]
        if min(spatial) < patch:
            raise ValueError(f"'{d['path']}' is {' x '.join(map(str, spatial))} pixels, smaller "
                             f"than --patch {patch}; give a smaller --patch")


def fit_unet(model: Any, images: list, targets: list, *, target_kind: str,
             validation: tuple[list, list] | None, quiet: bool) -> float:
    """Train with a per-epoch progress bar; returns the seconds it took."""
    epochs = model.epochs

    with _progress(quiet, "training the U-Net") as update:
        def progress(done: int, total: int, text: str | None = None) -> None:
            if text and epochs is not None:
                text = re.sub(r"^epoch (\d+)", lambda m: f"epoch {m.group(1)}/{epochs}", text)
            update(done, total, text)

        start = time.perf_counter()
        if target_kind == "labels":
            model.fit(images, targets, validation=validation, progress=progress)
        else:
            model.fit(images, masks=targets, validation=validation, progress=progress)
        seconds = time.perf_counter() - start
    return seconds


def best_val_dice(model: Any) -> float | None:
    """Validation Dice of the kept epoch (None without validation or when undefined)."""
    for row in model.history_:
        if row["epoch"] == model.best_epoch_:
            value = row.get("val_dice")
            return None if value is None or not np.isfinite(value) else float(value)
    return None


def unet_stats(model: Any, data: list[dict[str, Any]], sources: list[tuple[str, str]], *,
               target_kind: str, out: str, seconds: float, two_d: bool,
               seed: int) -> dict[str, Any]:
    """What --stats-out writes for a U-Net."""
    from niseg.io import to_jsonable

    classes = model.classes_.tolist()
    return {
        "model": out,
        "inputs": [{"image": i, target_kind: t, "shape": list(d["shape"])}
                   for (i, t), d in zip(sources, data)],
        "fitted_with": target_kind,
        "method": "unet",
        "spatial_dims": int(model.spatial_dims),
        "n_channels": int(model.n_channels_),
        "two_d": two_d,
        "seed": seed,
        "classes": classes,
        "labelled_pixels": labelled_pixels(data, classes, target_kind),
        "epochs_run": len(model.history_),
        "iterations": int(model.iterations_),
        "iterations_per_epoch": int(model.iterations_per_epoch_),
        "best_epoch": model.best_epoch_,
        "best_val_dice": best_val_dice(model),
        "stopped_because": model.stopped_because_,
        "training_seconds": round(seconds, 3),
        "device": model.device_,
        "init": model.init_,
        "config": to_jsonable(model.config_.to_dict()),
        "validation": to_jsonable(model.validation_),
        "loss": model.loss,
        "class_weights": model.class_weights_,
        "augment": to_jsonable(model.augment_.to_dict()),
        "halo": [int(h) for h in np.atleast_1d(model.halo)],
        "history": to_jsonable(model.history_),
    }


_STOPPED = {"epochs": "all planned epochs ran",
            "patience": "the validation Dice stopped improving (--patience)",
            "time_budget": "the time budget ran out (--time-budget)"}


def unet_report_sections(model: Any, first: dict[str, Any],
                         stats: dict[str, Any]) -> list[dict]:
    """All sections of a U-Net's training report."""
    from niseg.report import training_curves_figure

    sections = training_data_sections(model, first, stats)
    best = stats["best_val_dice"]
    text = (f"{stats['epochs_run']} epochs, {stats['iterations']} iterations "
            f"({stats['iterations_per_epoch']} per epoch) in {stats['training_seconds']:.1f} s "
            f"on {stats['device']}. Training stopped because "
            f"{_STOPPED.get(stats['stopped_because'], stats['stopped_because'])}.\n\n"
            f"Kept: the weights of epoch {stats['best_epoch']}")
    text += (f", validation Dice {best:.3f}." if best is not None else
             " (no validation Dice: the last epoch, or a validation block without foreground).")
    sections.append({"heading": "Training curves", "text": text,
                     "figure": training_curves_figure(model.history_,
                                                      best_epoch=model.best_epoch_)})
    sections.append({"heading": "Validation", "text": _validation_text(model.validation_)})
    config = stats["config"]
    sections.append({
        "heading": "Network configuration",
        "text": "Sizes chosen by the self-configuration rules (and the options given); the "
                "model file records them.",
        "table": [{"rule": r} for r in config.get("rules", [])] or {"rules": "none"},
    })
    sections.append({"heading": "Settings", "table": {
        "patch": config.get("patch_size"), "depth": config.get("depth"),
        "base channels": config.get("base_channels"), "batch size": config.get("batch_size"),
        "intensity normalization": config.get("normalization"), "loss": stats["loss"],
        "class weights": stats["class_weights"], "augmentation": _augment_text(model),
        "spatial dimensions": stats["spatial_dims"], "channels": stats["n_channels"],
        "2-D slices": stats["two_d"], "fine-tuned from": stats["init"], "seed": stats["seed"],
        "halo": stats["halo"]}})
    sections.append(prediction_section(model, first))
    return sections


def _validation_text(validation: dict[str, Any]) -> str:
    source = validation.get("source")
    if source == "none":
        return ("No validation (--validation 0): no early stopping, the last epoch is kept. "
                "Its quality is unknown until you evaluate it on other labelled images.")
    if source == "given":
        return ("Validated on the images given with --validation-pair, which the network "
                "never trained on.")
    fraction = 100 * (validation.get("fraction") or 0)
    lines = [(f"A block of about {fraction:.0f} % of the labelled pixels was held out of the "
              "training images, separated from the training pixels by a gap of "
              f"{validation.get('gap')} px (the network's halo), so no training pixel's "
              "receptive field reaches a validation pixel.")]
    for b in validation.get("blocks", []):
        if b.get("axis") is None:
            lines.append(f"Image {b['image']}: held out whole ({b['n_val']} labelled pixels).")
        else:
            lines.append(f"Image {b['image']}: indices {b['start']} to {b['stop'] - 1} along "
                         f"spatial axis {b['axis']} ({b['n_val']} validation, {b['n_train']} "
                         "training labelled pixels).")
    return "\n\n".join(lines)


def _augment_text(model: Any) -> str:
    values = model.augment_.to_dict()
    active = [k[:-2] for k, v in values.items() if k.endswith("_p") and v]
    return ", ".join(active) if active else "none"
