"""Pooled features of every library image, from a run's model, cached in the run folder.

Every registered model names its pooled features ``"avg_pool"``
(:mod:`imgcls.models`); :func:`embed_images` runs a trained model up to that
layer over image files, decoded exactly as for inference
(:func:`imgcls.inputs.make_inference_dataset`: Pillow, the run's input size,
turns applied). :func:`library_embeddings` does it for every readable image of
the library and keeps the features in ``runs/<id>/embeddings/`` keyed by
content hash and turns, so a second call on an unchanged library reads no
image, and a grown library only embeds its new images.

**Which run's features.** A run trained on the library's current labels has
seen them, wrong ones included, so its features could pull a mislabelled
image towards the class it was (wrongly) given. The parent generation (the
run a head-swap run was fine-tuned from) has seen fewer of them. Measured
(``benchmarks/bench_label_issues.py``, ``benchmarks/results/label_issues.json``:
digits, 5% of labels flipped, the library grown from 60% to 100% between the
generations), the run's OWN features rank the flipped labels better than its
parent's, the newly added images included: the newer generation has learnt
from more images, few epochs of fine-tuning memorise little of a small share
of wrong labels, and the strongly regularised linear head on top
(:data:`imgcls.cleaning.DEFAULT_C`) cannot fit the few wrong labels the
features still carry. So the default is the run's own model
(``prefer_parent=False``); ``prefer_parent=True`` uses the parent's where
the run has one whose folder is still there.

TensorFlow and Keras are imported only when images are embedded.
"""

from __future__ import annotations

import io
import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imgcls.core import UNKNOWN_CLASS, Workspace, as_workspace, check_bool, check_int
from imgcls.core.fileio import write_atomic
from imgcls.library import Library
from imgcls.runs import Run, RunNotFoundError, load_run

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "FEATURE_LAYER",
    "EMBEDDINGS_DIR",
    "EMBEDDING_COLUMNS",
    "Embeddings",
    "embedding_run",
    "embed_images",
    "library_embeddings",
]

#: The layer whose output is an image's embedding (every registered model has it).
FEATURE_LAYER = "avg_pool"
#: Folder of a run that caches its model's embeddings of library images.
EMBEDDINGS_DIR = "embeddings"
#: Columns of :attr:`Embeddings.rows`.
EMBEDDING_COLUMNS = ["path", "relpath", "label", "hash", "group", "turns"]


@dataclass(frozen=True, eq=False)
class Embeddings:
    """The embeddings of library images: one row of ``rows`` per row of ``features``.

    Attributes:
        rows: DataFrame with :data:`EMBEDDING_COLUMNS` (index 0..n-1).
        features: ``float32`` array ``(n, d)``: the ``"avg_pool"`` output of each image.
        run_id: The run whose model computed them.
        source: ``"own"`` (the run's model), ``"parent"`` (its parent's) or
            ``"given"`` (built by hand, e.g. from raw pixels).
        for_run: The run being cleaned for (None when built by hand).
        skipped: ``(path, reason)`` of catalog images that could not be decoded.
    """

    rows: pd.DataFrame
    features: np.ndarray
    run_id: str | None = None
    source: str = "given"
    for_run: str | None = None
    skipped: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        features = np.asarray(self.features)
        if features.ndim != 2 or len(features) != len(self.rows):
            raise ValueError(
                "`features` must be a 2-D array with one row per row of `rows`. "
                f"Received: features of shape {features.shape} for {len(self.rows)} rows"
            )
        missing = [c for c in ("path", "label") if c not in self.rows.columns]
        if missing:
            raise ValueError(f"`rows` must have columns path and label (and relpath, hash, group, turns); "
                             f"missing {missing}.")
        rows = self.rows.reset_index(drop=True).copy()
        for col, default in (("relpath", None), ("hash", ""), ("group", None), ("turns", 0)):
            if col not in rows.columns:
                rows[col] = rows["path"].astype(str) if default is None else default
        rows["group"] = rows["group"].fillna("").astype(str)
        rows["group"] = rows["group"].where(rows["group"] != "", rows["path"].astype(str))
        rows["turns"] = rows["turns"].fillna(0).astype(int)
        object.__setattr__(self, "rows", rows[EMBEDDING_COLUMNS + [c for c in rows.columns
                                                                  if c not in EMBEDDING_COLUMNS]])
        object.__setattr__(self, "features", np.ascontiguousarray(features, dtype=np.float32))
        object.__setattr__(self, "skipped", tuple(self.skipped))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def dim(self) -> int:
        """Length of one embedding."""
        return int(self.features.shape[1])

    def subset(self, mask: Any) -> Embeddings:
        """The embeddings of the rows where ``mask`` is true (a boolean array or Series)."""
        keep = np.asarray(mask, dtype=bool)
        if keep.shape != (len(self),):
            raise ValueError(f"`mask` must be one boolean per row ({len(self)}). Received: shape {keep.shape}")
        return Embeddings(self.rows[keep], self.features[keep], run_id=self.run_id, source=self.source,
                          for_run=self.for_run, skipped=self.skipped)

    def labelled(self) -> Embeddings:
        """The embeddings of the images in a class folder (``library/unknown/`` left out)."""
        return self.subset(self.rows["label"].astype(str) != UNKNOWN_CLASS)

    def __repr__(self) -> str:
        return (f"Embeddings(n={len(self)}, dim={self.dim}, run_id={self.run_id!r}, source={self.source!r}, "
                f"for_run={self.for_run!r})")


# --------------------------------------------------------------------------
# Which run
# --------------------------------------------------------------------------
def embedding_run(
    run: Run | str | os.PathLike | None = None,
    *,
    workspace: Workspace | str | os.PathLike | None = None,
    prefer_parent: bool = False,
) -> tuple[Run, str]:
    """The run whose model should embed the library for cleaning ``run``.

    Args:
        run: A :class:`~imgcls.runs.Run` or a reference accepted by
            :func:`~imgcls.runs.load_run`; None for the production run.
        workspace: Needed when ``run`` is a run id, "production" or "latest".
        prefer_parent: Use the parent generation's model when ``run`` has a
            parent whose folder (with its model) is still there (default:
            ``run``'s own; see the module notes for why).

    Returns:
        ``(the run to embed with, "parent" or "own")``.
    """
    check_bool(prefer_parent, "prefer_parent")
    the_run = load_run("production" if run is None else run, workspace=workspace)
    if prefer_parent and the_run.parent:
        try:
            parent = load_run(the_run.path.parent / the_run.parent)
        except (RunNotFoundError, ValueError, OSError):
            parent = None
        if parent is not None and parent.model_path.is_file():
            return parent, "parent"
    return the_run, "own"


# --------------------------------------------------------------------------
# Embedding images
# --------------------------------------------------------------------------
_FEATURE_FUNCTIONS: dict[tuple[int, tuple[int, int]], tuple[Any, Any]] = {}


def _feature_function(model: keras.Model, image_size: tuple[int, int]):
    """The model up to :data:`FEATURE_LAYER` as one ``tf.function`` (any batch size), kept per model."""
    key = (id(model), image_size)
    cached = _FEATURE_FUNCTIONS.get(key)
    if cached is not None and cached[0]() is model:
        return cached[1]
    import keras
    import tensorflow as tf

    try:
        layer = model.get_layer(FEATURE_LAYER)
    except ValueError:
        raise ValueError(
            f"The model {model.name!r} has no layer named {FEATURE_LAYER!r}, so its pooled features "
            "cannot be read. Every model of imgcls.models has one; for a model of your own, name its "
            f"global pooling layer {FEATURE_LAYER!r}."
        ) from None
    extractor = keras.Model(model.inputs, layer.output, name=f"{model.name}_features")
    spec = tf.TensorSpec((None, image_size[0], image_size[1], 3), tf.float32)

    @tf.function(input_signature=[spec], autograph=False)  # no Python control flow to convert
    def features(images):
        out = extractor(images, training=False)
        return tf.reshape(out, (tf.shape(out)[0], -1))

    for stale in [k for k, (ref, _) in _FEATURE_FUNCTIONS.items() if ref() is None]:
        del _FEATURE_FUNCTIONS[stale]
    _FEATURE_FUNCTIONS[key] = (weakref.ref(model), features)
    return features


def _image_size(run: Run) -> tuple[int, int]:
    size = run.image_size
    if size is None:
        shape = run.model.input_shape
        size = (int(shape[1]), int(shape[2]))
    return int(size[0]), int(size[1])


def embed_images(
    run: Run | str | os.PathLike,
    paths: Sequence[str | os.PathLike],
    *,
    workspace: Workspace | str | os.PathLike | None = None,
    turns: Sequence[int] | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """The ``"avg_pool"`` features of image files under a run's model (no cache).

    Args:
        run: A :class:`~imgcls.runs.Run` or a reference accepted by
            :func:`~imgcls.runs.load_run`.
        paths: Image files.
        workspace: Needed when ``run`` is a run id, "production" or "latest".
        turns: Quarter turns counter-clockwise per path (the catalog's ``turns``).
        batch_size: Images per model call.
        progress: Show a tqdm progress bar.

    Returns:
        ``(features, ok, skipped)``: ``float32 (n, d)`` in the order of
        ``paths`` (zeros where a file could not be decoded), ``ok`` bool
        ``(n,)``, and ``(path, reason)`` of the files that could not be decoded.
    """
    from imgcls.inputs import make_inference_dataset

    the_run = load_run(run, workspace=workspace)
    batch_size = check_int(batch_size, "batch_size")
    names = [os.fspath(p) for p in paths]
    size = _image_size(the_run)
    features_of = _feature_function(the_run.model, size)
    skipped: list[tuple[str, str]] = []
    ds = make_inference_dataset(names, image_size=size, batch_size=batch_size, skipped=skipped,
                                turns=None if turns is None else [int(t) for t in turns])
    out: np.ndarray | None = None
    ok = np.zeros(len(names), dtype=bool)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(names), desc=f"embedding with {the_run.run_id}", unit="img")
    try:
        for images, index in ds:
            feats = features_of(images).numpy()
            idx = index.numpy()
            if out is None:
                out = np.zeros((len(names), feats.shape[1]), dtype=np.float32)
            out[idx] = feats
            ok[idx] = True
            if bar is not None:
                bar.update(len(idx))
    finally:
        if bar is not None:
            bar.close()
    if out is None:
        dim = int(np.prod(the_run.model.get_layer(FEATURE_LAYER).output.shape[1:]))
        out = np.zeros((len(names), dim), dtype=np.float32)
    return out, ok, skipped


# --------------------------------------------------------------------------
# The library, cached per run
# --------------------------------------------------------------------------
def _cache_path(run: Run) -> Path:
    h, w = _image_size(run)
    return run.path / EMBEDDINGS_DIR / f"{FEATURE_LAYER}-{h}x{w}.npz"


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    """``{"<hash>:<turns>": features}`` of a cache file ({} if missing or unreadable)."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, feats = data["keys"], data["features"]
    except (OSError, KeyError, ValueError):
        return {}
    return {str(k): feats[i] for i, k in enumerate(keys)}


def _write_cache(path: Path, cache: dict[str, np.ndarray]) -> None:
    keys = sorted(cache)
    buffer = io.BytesIO()
    np.savez(buffer, keys=np.array(keys, dtype=str),
             features=np.stack([cache[k] for k in keys]).astype(np.float32))
    write_atomic(path, buffer.getvalue())


def library_embeddings(
    workspace: Workspace | str | os.PathLike,
    run: Run | str | os.PathLike | None = None,
    *,
    prefer_parent: bool = False,
    catalog: pd.DataFrame | None = None,
    batch_size: int = 64,
    cache: bool = True,
    progress: bool = False,
) -> Embeddings:
    """The embeddings of every readable library image (``unknown/`` included).

    Features are cached in ``runs/<id>/embeddings/avg_pool-<h>x<w>.npz`` of
    the run that computes them, keyed by content hash and turns: only images
    not in the cache are decoded, so a second call on an unchanged library
    reads no image, and a grown library embeds only its new images.

    Args:
        workspace: The workspace.
        run: The run to clean for (a :class:`~imgcls.runs.Run`, run folder,
            run id, "production" or "latest"); None for the production run.
        prefer_parent: Embed with the parent generation's model when ``run``
            has one; by default with ``run``'s own (see the module notes for why).
        catalog: A catalog from ``Library.scan()`` to use instead of scanning.
        batch_size: Images per model call.
        cache: Read and extend the cache; ``False`` embeds every image afresh
            and writes nothing.
        progress: Show a progress bar while embedding.

    Returns:
        :class:`Embeddings` of the readable library images, in catalog order
        (files that could not be decoded are left out and listed in ``skipped``).
    """
    ws = as_workspace(workspace)
    check_bool(cache, "cache")
    target = load_run("production" if run is None else run, workspace=ws)
    embed_run, source = embedding_run(target, prefer_parent=prefer_parent)
    if catalog is None:
        catalog = Library(ws).scan()
    elif not isinstance(catalog, pd.DataFrame):
        raise ValueError(f"`catalog` must be a DataFrame from Library.scan(). Received: {type(catalog).__name__}")
    rows = catalog
    if "readable" in rows.columns:
        rows = rows[rows["readable"].astype(bool)]
    rows = rows.reset_index(drop=True).copy()
    if "turns" not in rows.columns:
        rows["turns"] = 0
    rows["turns"] = rows["turns"].fillna(0).astype(int)
    if "hash" not in rows.columns:
        rows["hash"] = ""
    keys = [f"{h}:{t}" if h else "" for h, t in zip(rows["hash"].astype(str), rows["turns"])]

    path = _cache_path(embed_run)
    stored = _read_cache(path) if cache else {}
    todo = [i for i, k in enumerate(keys) if not k or k not in stored]
    skipped: list[tuple[str, str]] = []
    fresh: dict[int, np.ndarray] = {}
    if todo:
        feats, ok, skipped = embed_images(embed_run, rows["path"].iloc[todo].tolist(),
                                          turns=rows["turns"].iloc[todo].tolist(),
                                          batch_size=batch_size, progress=progress)
        fresh = {i: feats[j] for j, i in enumerate(todo) if ok[j]}
        if cache:
            added = {keys[i]: f for i, f in fresh.items() if keys[i]}
            if added:
                _write_cache(path, {**_read_cache(path), **added})
    keep = np.array([i in fresh or (bool(k) and k in stored) for i, k in enumerate(keys)], dtype=bool)
    dim = next(iter(fresh.values())).shape[0] if fresh else (next(iter(stored.values())).shape[0] if stored else 0)
    features = np.zeros((int(keep.sum()), dim), dtype=np.float32)
    for j, i in enumerate(np.flatnonzero(keep)):
        features[j] = fresh[i] if i in fresh else stored[keys[i]]
    return Embeddings(rows[keep], features, run_id=embed_run.run_id, source=source,
                      for_run=target.run_id, skipped=tuple(skipped))
