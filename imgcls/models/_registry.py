"""Model registry: models are registered by name, timm style.

Each family module decorates its public builder with :func:`register_model`,
which stores a :class:`ModelSpec` (the builder plus the input size and the
normalisation config kept beside it). :func:`create_model` validates user
arguments, builds the model, and optionally loads a local weights file.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import keras
import numpy as np

__all__ = [
    "DEFAULT_MODEL",
    "ModelSpec",
    "create_model",
    "get_model_spec",
    "list_models",
    "register_model",
]

#: The model used when none is named: small, fast on CPU, made for 64x64 images.
DEFAULT_MODEL = "mini_inception"

_WEIGHT_SUFFIXES = (".keras", ".weights.h5")


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model name.

    Attributes:
        name: Registry name, e.g. ``"inception_v4"``.
        builder: ``builder(num_classes, *, input_shape, dropout, seed, **kwargs)``
            returning an uncompiled functional ``keras.Model``.
        default_input_shape: ``(height, width, 3)`` used when no
            ``input_shape`` is given.
        normalization: How the model's first layer (``"preprocess"``) maps
            RGB pixels in ``[0, 255]``: either ``{"scale": s, "offset": o}``
            (``y = x * s + o``) or ``{"mean": (r, g, b), "std": (r, g, b)}``
            in ``[0, 1]`` units (``y = (x / 255 - mean) / std``). Read only.
        min_input_size: Smallest height and width the architecture accepts.
        description: One line for humans.
        default_dropout: Dropout rate before ``"predictions"`` when
            ``create_model(dropout=None)``.
    """

    name: str
    builder: Callable[..., keras.Model] = field(repr=False)
    default_input_shape: tuple[int, int, int]
    normalization: Mapping[str, Any] = field(hash=False)
    min_input_size: int
    description: str = ""
    default_dropout: float = 0.2


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    default_input_shape: tuple[int, int, int],
    normalization: Mapping[str, Any],
    min_input_size: int,
    description: str | None = None,
    default_dropout: float = 0.2,
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Decorator registering a model builder under ``name``.

    Args:
        name: Registry name (lower case, underscores).
        default_input_shape: ``(height, width, 3)``.
        normalization: ``{"scale", "offset"}`` or ``{"mean", "std"}``; see
            :class:`ModelSpec`.
        min_input_size: Smallest accepted height and width.
        description: One line; defaults to the first line of the builder's
            docstring.
        default_dropout: Dropout rate used when ``create_model`` gets none.

    Returns:
        The decorator; it returns the builder unchanged.

    Raises:
        ValueError: If ``name`` is already registered or the config is invalid.

    Example:
        >>> @register_model("tiny", default_input_shape=(32, 32, 3),
        ...                 normalization={"scale": 1 / 255, "offset": 0.0},
        ...                 min_input_size=32)
        ... def build_tiny(num_classes, *, input_shape, dropout, seed): ...
    """
    _check_normalization(name, normalization)

    def decorator(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if name in _REGISTRY:
            raise ValueError(
                f"A model named {name!r} is already registered "
                f"(by {_REGISTRY[name].builder.__module__}). Pick another name."
            )
        doc = (builder.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ModelSpec(
            name=name,
            builder=builder,
            default_input_shape=tuple(int(v) for v in default_input_shape),
            normalization=MappingProxyType(dict(normalization)),
            min_input_size=int(min_input_size),
            description=description if description is not None else (doc[0] if doc else ""),
            default_dropout=float(default_dropout),
        )
        return builder

    return decorator


def list_models() -> list[str]:
    """Return the registered model names, sorted.

    Example:
        >>> "inception_v4" in list_models()
        True
    """
    return sorted(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    """Return the :class:`ModelSpec` registered under ``name``.

    Raises:
        ValueError: If ``name`` is unknown; the message lists the known names.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        known = list_models()
        hint = ""
        if isinstance(name, str):
            close = difflib.get_close_matches(name.lower(), known, n=1)
            if close:
                hint = f" Did you mean {close[0]!r}?"
        raise ValueError(
            f"Unknown model name {name!r}.{hint} Known models: {', '.join(known)}. "
            "See imgcls.models.list_models()."
        )
    return _REGISTRY[name]


def create_model(
    name: str,
    num_classes: int,
    *,
    input_shape: tuple[int, ...] | None = None,
    weights: str | os.PathLike | None = None,
    dropout: float | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> keras.Model:
    """Build a registered model by name, timm style.

    The model takes float32 RGB pixels in ``[0, 255]`` of shape
    ``(batch, height, width, 3)`` and normalises them itself (first layer
    ``"preprocess"``). Its pooled features come from the layer ``"avg_pool"``
    and its class probabilities from the softmax layer ``"predictions"``.
    The model is not compiled.

    Args:
        name: A name from :func:`list_models`, e.g. ``"mini_inception"``.
        num_classes: Number of output classes, an int >= 1. One class is
            accepted (e.g. to build a model before classes exist) but a softmax
            over one class always outputs 1.0, so train with >= 2.
        input_shape: ``(height, width)`` or ``(height, width, 3)``; defaults to
            the spec's ``default_input_shape``. Must be at least
            ``min_input_size`` on each side.
        weights: ``None`` for random initialisation, or the path of a local
            ``.keras`` or ``.weights.h5`` file saved from a model of the same
            name and ``num_classes`` (any input size). Nothing is ever
            downloaded: ``weights="imagenet"`` is refused.
        dropout: Dropout rate in ``[0, 1)`` before ``"predictions"``; defaults
            to the spec's ``default_dropout``.
        seed: If given, an int >= 0 passed to ``keras.utils.set_random_seed``
            (this seeds Python, NumPy and backend global generators) before
            building, so the same seed gives the same initial weights.
        **kwargs: Extra keyword arguments of the family builder.

    Returns:
        An uncompiled functional ``keras.Model`` named ``name``.

    Raises:
        ValueError: For an unknown name, a bad argument, a weights value that
            is not a readable local file, or a file that does not fit.

    Example:
        >>> model = create_model("mini_inception", num_classes=12)
        >>> model.get_layer("predictions").units
        12
    """
    spec = get_model_spec(name)
    _check_num_classes(num_classes)
    shape = _check_input_shape(spec, input_shape)
    weights_path = _check_weights(weights)
    if dropout is None:
        dropout = spec.default_dropout
    _check_dropout(dropout)
    _check_seed(seed)
    _check_kwargs(spec, kwargs)

    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    model = spec.builder(
        int(num_classes), input_shape=shape, dropout=float(dropout), seed=seed, **kwargs
    )
    if weights_path is not None:
        _load_weights(model, weights_path, name=name, num_classes=int(num_classes))
    return model


# ---------------------------------------------------------------------------
# validation helpers


def _check_normalization(name: str, normalization: Mapping[str, Any]) -> None:
    keys = set(normalization)
    if keys not in ({"scale", "offset"}, {"mean", "std"}):
        raise ValueError(
            f"`normalization` for {name!r} must have exactly the keys "
            "{'scale', 'offset'} or {'mean', 'std'}. "
            f"Received: normalization={dict(normalization)!r}"
        )


def _check_num_classes(num_classes: Any) -> None:
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, int | np.integer)
        or num_classes < 1
    ):
        raise ValueError(
            "`num_classes` must be an int >= 1 (the number of classes to predict; "
            f"use >= 2 to train a softmax). Received: num_classes={num_classes!r}"
        )


def _check_input_shape(spec: ModelSpec, input_shape: Any) -> tuple[int, int, int]:
    if input_shape is None:
        return spec.default_input_shape
    expected = (
        f"`input_shape` must be (height, width) or (height, width, 3) with ints >= "
        f"{spec.min_input_size} for {spec.name!r} (default "
        f"{spec.default_input_shape})."
    )
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise ValueError(f"{expected} Received: input_shape={input_shape!r}") from None
    if len(shape) == 2:
        shape = (*shape, 3)
    if len(shape) != 3 or any(
        isinstance(v, bool) or not isinstance(v, int | np.integer)
        for v in shape
    ):
        raise ValueError(f"{expected} Received: input_shape={input_shape!r}")
    if shape[2] != 3:
        raise ValueError(
            f"Models take RGB images, so the last dimension of `input_shape` must be 3. "
            f"Received: input_shape={input_shape!r}. Convert grey or RGBA images to RGB."
        )
    if min(shape[:2]) < spec.min_input_size:
        smaller = [n for n in list_models() if _REGISTRY[n].min_input_size <= min(shape[:2])]
        raise ValueError(
            f"{spec.name!r} needs images of at least {spec.min_input_size}x"
            f"{spec.min_input_size} pixels. Received: input_shape={input_shape!r}. "
            f"Use a larger image size (default {spec.default_input_shape[:2]})"
            + (f" or a model that accepts this size: {', '.join(smaller)}." if smaller else ".")
        )
    return tuple(int(v) for v in shape)


def _check_weights(weights: Any) -> Path | None:
    if weights is None:
        return None
    expected = (
        "`weights` must be None (random initialisation) or the path of a local "
        "`.keras` or `.weights.h5` file. Nothing is downloaded here: to start "
        "from pretrained weights, save them to a local file first and pass its path."
    )
    if not isinstance(weights, str | os.PathLike):
        raise ValueError(f"{expected} Received: weights={weights!r}")
    path = Path(weights).expanduser()
    if not str(path).endswith(_WEIGHT_SUFFIXES):
        raise ValueError(f"{expected} Received: weights={weights!r}")
    if not path.is_file():
        raise ValueError(f"Weights file not found: {str(path)!r}. {expected}")
    return path


def _check_dropout(dropout: Any) -> None:
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ValueError(
            f"`dropout` must be a float in [0, 1) (0 disables it). Received: dropout={dropout!r}"
        )


def _check_seed(seed: Any) -> None:
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"`seed` must be None or an int >= 0. Received: seed={seed!r}")


def _check_kwargs(spec: ModelSpec, kwargs: dict[str, Any]) -> None:
    if not kwargs:
        return
    params = inspect.signature(spec.builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    reserved = {"num_classes", "input_shape", "dropout", "seed"}
    accepted = sorted(
        n
        for n, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in reserved
    )
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"Unknown keyword argument(s) {unknown} for model {spec.name!r}. "
            f"Accepted extra arguments: {accepted or 'none'}."
        )


def _load_weights(model: keras.Model, path: Path, *, name: str, num_classes: int) -> None:
    failure: Exception | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(str(path))
        except Exception as err:  # Keras raises several types for a mismatched file.
            failure = err
    if failure is None:
        for w in caught:  # a successful load keeps its warnings
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return
    # On failure, Keras' per-container warnings only repeat the error raised here.
    raise ValueError(
        f"Could not load weights from {str(path)!r} into {name!r} with "
        f"num_classes={num_classes}: {_short_reason(failure)} The file must come from a "
        "model of the same name with the same number of classes; to reuse a model "
        "trained on a different class list, load it and swap its head "
        "(imgcls.training.swap_head)."
    ) from failure


def _short_reason(err: Exception) -> str:
    """One line from a Keras loading error (which can embed whole tensors)."""
    text = str(err)
    shapes = re.search(r"variable\.shape=(\(.*?\)), Received: value\.shape=(\(.*?\))", text)
    objects = re.search(r"List of objects that could not be loaded:\s*(\[.*?\])", text, re.S)
    if shapes:
        reason = f"a weight has shape {shapes.group(2)} in the file but {shapes.group(1)} here"
        if objects:
            reason += f" (layers not loaded: {' '.join(objects.group(1).split())})"
        return reason + "."
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return first[:300].rstrip(".") + "."
