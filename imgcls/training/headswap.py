"""Head-swap fine-tuning: the next generation of a model.

The write-up's loop: take the last trained model, pop its output layer, add a
new randomly initialised one sized for the new class count, and keep training
*all* weights. Generation after generation this plateaus in far fewer epochs
than training from scratch.

* :func:`swap_head` does the surgery on a ``keras.Model``.
* :func:`class_changes` tells what the library did to the class list since a
  run: classes added, kept, and lost (with where the lost class's images went).
* :func:`next_generation` rebuilds the class list from the library, swaps the
  head of the parent run's model and trains it until plateau with the same
  stopping rule as :func:`imgcls.training.train`, recording the parent.
* :func:`split_changes` checks that images keep their split from one
  generation to the next.

The experiment that measures the claim (head swap vs from scratch) is
:func:`imgcls.experiments.headswap_experiment`.

Splits are a pure function of each image's content (see :mod:`imgcls.library`),
so an image keeps its train / val / test split from one generation to the
next; :func:`next_generation` checks it and warns if an image the parent
trained on would now be evaluated on.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import pandas as pd

from imgcls.core.checks import check_int
from imgcls.core.workspace import Workspace, as_workspace
from imgcls.library import Library, assign_splits
from imgcls.runs import Run, load_run
from imgcls.training.data import _counts_table
from imgcls.training.train import train

__all__ = ["HEAD_LAYER", "swap_head", "class_changes", "split_changes", "next_generation"]

#: Name of the output layer every imgcls model has (see imgcls.models).
HEAD_LAYER = "predictions"


# =========================================================================== head swap
def swap_head(model: Any, num_classes: int, *, seed: int | None = None, dropout: float | None = None):
    """Return a model with a new, randomly initialised output layer.

    The new model is built on the same graph: every layer but the output
    layer (``"predictions"``) is *shared* with ``model`` (same layer objects,
    same weights, not copies), and all layers are left trainable, so training
    the new model keeps updating the inherited weights. The new output layer
    has the old one's configuration (activation, bias, initialisers,
    regularisers) with ``num_classes`` units and fresh weights.

    Because layers are shared, training the returned model also changes
    ``model``; pass a fresh copy (``run.load_model()``) if you still need the
    original in memory. The parent on disk is never touched.

    Args:
        model: A functional ``keras.Model`` whose output is the layer
            ``"predictions"`` (every model from :func:`imgcls.models.create_model`).
        num_classes: Units of the new output layer (the new class count).
        seed: Seed of the new layer's initialiser (None: random).
        dropout: ``None`` keeps the dropout layer in front of the output
            layer as it is (the architecture stays the one trained from
            scratch). A float in ``[0, 1)`` replaces it with a new
            ``Dropout`` of that rate (``0`` removes it), or adds one if the
            model had none.

    Returns:
        A new uncompiled functional ``keras.Model`` with the same name and inputs.

    Raises:
        ValueError: If ``model`` has no ``"predictions"`` layer producing its
            output, or an argument is invalid.

    Example:
        >>> parent = load_run("production", workspace=ws).load_model(compile=False)
        >>> child = swap_head(parent, num_classes=12, seed=0)
        >>> child.get_layer("predictions").units
        12
    """
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: {type(model).__name__}")
    check_int(num_classes, "num_classes", 1, " (the new number of classes)")
    if seed is not None:
        check_int(seed, "seed", 0, " or None")
    if dropout is not None and (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
                                or not 0 <= dropout < 1):
        raise ValueError(
            f"`dropout` must be None (keep the model's) or a float in [0, 1). Received: dropout={dropout!r}"
        )
    names = [layer.name for layer in model.layers]
    if HEAD_LAYER not in names:
        raise ValueError(
            f"The model {model.name!r} has no layer named {HEAD_LAYER!r}; its last layers are "
            f"{names[-4:]}. imgcls models name their output layer {HEAD_LAYER!r} "
            "(build them with imgcls.models.create_model)."
        )
    head = model.get_layer(HEAD_LAYER)
    if len(model.outputs) != 1 or model.outputs[0] is not head.output:
        raise ValueError(
            f"The model's output must be the {HEAD_LAYER!r} layer (a single-output classifier). "
            f"Received a model with outputs {[getattr(t, 'name', t) for t in model.outputs]}."
        )
    features = head.input
    if dropout is not None:
        prev = _producer(features)
        if isinstance(prev, keras.layers.Dropout):
            features = prev.input
        if dropout > 0:
            features = keras.layers.Dropout(float(dropout), seed=seed, name="dropout")(features)

    config = head.get_config()
    config["units"] = int(num_classes)
    config["name"] = HEAD_LAYER
    for key in ("kernel_initializer", "bias_initializer"):
        init = config.get(key)
        if isinstance(init, dict) and isinstance(init.get("config"), dict) and "seed" in init["config"]:
            init["config"]["seed"] = None if seed is None else int(seed) + (key == "bias_initializer")
    new_head = type(head).from_config(config)
    outputs = new_head(features)
    # A single input is passed as a tensor, not a one-item list, so the new
    # model accepts a bare batch without Keras' input-structure warning.
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    new = keras.Model(inputs, outputs, name=model.name)
    for layer in new.layers:
        layer.trainable = True
    return new


def _producer(tensor: Any) -> Any:
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    return getattr(history, "operation", None) or history[0]


# =========================================================================== class list


def _scan(ws: Workspace) -> pd.DataFrame:
    return Library(ws).scan()


def _library_classes(catalog: pd.DataFrame, cutoff: int) -> tuple[list[str], pd.Series]:
    counts = _counts_table(catalog)
    return sorted(counts[counts >= cutoff].index.astype(str)), counts


def class_changes(
    workspace: Workspace | str | os.PathLike,
    run: Run | str | os.PathLike,
    *,
    cutoff: int | None = None,
    catalog: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """How the library's class list changed since a run.

    Args:
        workspace: The workspace.
        run: The parent run (a :class:`~imgcls.runs.Run`, a run folder path,
            an id, "production" or "latest").
        cutoff: Minimum readable images for a class (default: the parent's
            cutoff, else the workspace's).
        catalog: A fresh ``Library.scan()`` catalog, to save a scan.

    Returns:
        One row per class of the parent or of the library now:
        [class, status, n_parent, n_now, note] where ``status`` is
        ``"kept"``, ``"added"`` or ``"lost"``; ``n_parent`` counts the
        images the parent's snapshot had, ``n_now`` the readable images in
        the library now; ``note`` says why a class is lost (under the cutoff,
        folder gone, renamed?) and where its former images are now.
        ``attrs["classes"]`` is the new class list and ``attrs["cutoff"]`` the
        cutoff used.
    """
    ws = as_workspace(workspace)
    parent = load_run(run, workspace=ws)
    if cutoff is None:
        cutoff = int(parent.config.get("cutoff") or ws.cutoff)
    cutoff = check_int(cutoff, "cutoff")
    cat = _scan(ws) if catalog is None else catalog
    new_classes, counts = _library_classes(cat, int(cutoff))
    snap = parent.splits
    n_parent = snap["label"].value_counts() if len(snap) else pd.Series(dtype=int)
    where_now = cat.drop_duplicates("hash").set_index("hash")["label"] if len(cat) else pd.Series(dtype=str)
    rows = []
    for cls in sorted(set(parent.classes) | set(new_classes)):
        in_parent, in_now = cls in parent.classes, cls in new_classes
        status = "kept" if in_parent and in_now else ("added" if in_now else "lost")
        n_now = int(counts.get(cls, 0))
        note = ""
        if status == "added":
            note = f"new: {n_now} images meet the cutoff of {cutoff}"
        elif status == "lost":
            hashes = snap.loc[snap["label"] == cls, "hash"].astype(str) if "hash" in snap else pd.Series(dtype=str)
            now = hashes.map(where_now).fillna("(no longer in the library)")
            moved = now[now != cls].value_counts()
            parts = []
            if n_now:
                parts.append(f"under the cutoff: {n_now} < {cutoff} images")
            else:
                parts.append("no images left under this name")
            if len(moved):
                top, top_n = moved.index[0], int(moved.iloc[0])
                if top in new_classes and top not in parent.classes and top_n >= 0.5 * max(len(hashes), 1):
                    parts.append(f"renamed to {top!r}? {top_n} of its {len(hashes)} images are labelled {top!r} now")
                parts.append("its former images are now in: " + ", ".join(f"{k} ({int(v)})" for k, v in moved.head(5).items()))
            note = "; ".join(parts)
        rows.append({"class": cls, "status": status, "n_parent": int(n_parent.get(cls, 0)),
                     "n_now": n_now, "note": note})
    df = pd.DataFrame(rows, columns=["class", "status", "n_parent", "n_now", "note"])
    df.attrs["classes"] = new_classes
    df.attrs["cutoff"] = int(cutoff)
    return df


def split_changes(run: Run | str | os.PathLike, catalog: pd.DataFrame,
                  *, workspace: Workspace | str | os.PathLike | None = None) -> pd.DataFrame:
    """Images of the parent's snapshot whose split would differ now.

    Splits are hash-based, so this is normally empty; a change happens only
    when a new near duplicate joins an image's duplicate group. An image the
    parent trained on that is now in val / test / benchmark would make the
    next generation's evaluation optimistic.

    Args:
        run: The parent run (a :class:`~imgcls.runs.Run`, a run folder path,
            or an id, "production" or "latest" with ``workspace``).
        catalog: A catalog with a ``split`` column (``assign_splits(Library.scan())``).
        workspace: Needed when ``run`` is a run id, "production" or "latest".

    Returns:
        DataFrame [hash, label, split_parent, split_now, leak] (``leak`` True
        when the parent trained or validated on an image now held out).
    """
    parent = load_run(run, workspace=workspace)
    snap = parent.splits
    cols = ["hash", "label", "split_parent", "split_now", "leak"]
    if "hash" not in snap or not len(snap) or "split" not in catalog:
        return pd.DataFrame(columns=cols)
    now = catalog.drop_duplicates("hash").set_index("hash")["split"]
    merged = snap[["hash", "label", "split"]].rename(columns={"split": "split_parent"}).copy()
    merged["split_now"] = merged["hash"].map(now)
    merged = merged[merged["split_now"].notna() & (merged["split_now"] != merged["split_parent"])]
    merged["leak"] = merged["split_parent"].isin(["train", "val"]) & merged["split_now"].isin(["test", "benchmark"])
    return merged[cols].reset_index(drop=True)


# =========================================================================== next generation
_RESERVED_TRAIN_KWARGS = {"initial_model", "parent", "classes", "model", "image_size", "catalog", "workspace"}


def next_generation(
    workspace: Workspace | str | os.PathLike,
    run: Run | str | os.PathLike,
    *,
    cutoff: int | None = None,
    allow_lost_classes: bool = False,
    seed: int = 0,
    head_seed: int | None = None,
    dropout: float | None = None,
    max_epochs: int | None = None,
    patience: int | None = None,
    catalog: pd.DataFrame | None = None,
    run_id: str | None = None,
    verbose: int = 1,
    **train_kwargs: Any,
) -> Run:
    """Train the next generation of a run by head swap.

    1. Rebuild the class list from the library as it is now (classes meeting
       the cutoff; ``unknown`` never trains).
    2. Compare it with the parent's (:func:`class_changes`): added classes are
       welcome; a lost class (under the cutoff, folder removed or renamed)
       raises unless ``allow_lost_classes``, in which case it is warned about.
    3. Load a fresh copy of the parent's model and :func:`swap_head` it.
    4. Train all weights until plateau with :func:`imgcls.training.train`
       (same optimiser, stopping rule and defaults as from scratch), recording
       the parent; the splits are the library's stable hash-based ones.
    5. Record the class changes and split check in the new run's
       ``metrics.json`` under ``"lineage"``.

    Args:
        workspace: The workspace.
        run: The run to continue from (a :class:`~imgcls.runs.Run`, a run
            folder path, an id, "production" or "latest").
        cutoff: Minimum readable images per class (default: the parent's cutoff).
        allow_lost_classes: Train even if classes of the parent would be lost.
        seed: Training seed (shuffle, augmentation), as in ``train``.
        head_seed: Seed of the new output layer (default: ``seed``).
        dropout: ``None`` keeps the parent's dropout; see :func:`swap_head`.
        max_epochs: Upper bound on epochs (``train``'s default when None).
        patience: Early-stopping patience (``train``'s default when None).
        catalog: A fresh ``Library.scan()`` catalog (optionally with a
            ``split`` column), to save a scan and pin the data.
        run_id: Folder name of the new run (generated when None).
        verbose: As in ``train``.
        **train_kwargs: Other :func:`imgcls.training.train` options
            (``batch_size``, ``learning_rate``, ``augmentation``, ``cache``,
            ``min_delta``, ``monitor``, ``callbacks``, ``top_k``, ``throwaway``).

    Returns:
        The new :class:`~imgcls.runs.Run` (``run.parent`` is the parent's id).

    Raises:
        ValueError: Classes would be lost and ``allow_lost_classes`` is False
            (the message names them and where their images went), or fewer
            than 2 classes meet the cutoff, or a bad option.
    """
    ws = as_workspace(workspace)
    parent = load_run(run, workspace=ws)
    clash = sorted(_RESERVED_TRAIN_KWARGS & set(train_kwargs))
    if clash:
        raise ValueError(
            f"next_generation sets {clash} itself (the parent's model and input size, the library's "
            "classes). Remove them; to train a different model, use imgcls.training.train."
        )
    if head_seed is None:
        head_seed = seed
    cat = _scan(ws) if catalog is None else catalog
    if "split" not in cat:
        cat = assign_splits(cat)
    changes = class_changes(ws, parent, cutoff=cutoff, catalog=cat)
    classes = list(changes.attrs["classes"])
    used_cutoff = changes.attrs["cutoff"]
    lost = changes[changes["status"] == "lost"]
    added = changes.loc[changes["status"] == "added", "class"].tolist()
    if len(lost):
        detail = "; ".join(f"{r['class']}: {r['note']}" for _, r in lost.iterrows())
        if not allow_lost_classes:
            raise ValueError(
                f"The next generation of {parent.run_id!r} would lose {len(lost)} class(es) the parent "
                f"predicts: {', '.join(lost['class'])} ({detail}). Bring the images back (Library.undo, "
                f"Library.move), lower the cutoff (cutoff={used_cutoff} now), or pass "
                "allow_lost_classes=True to drop them on purpose."
            )
        warnings.warn(
            f"Next generation of {parent.run_id!r} drops class(es) {', '.join(lost['class'])}: {detail}.",
            UserWarning, stacklevel=2,
        )
    if len(classes) < 2:
        raise ValueError(
            f"Only {len(classes)} class(es) meet cutoff={used_cutoff} now ({classes}); training needs 2 "
            "or more. Add images or lower the cutoff."
        )
    moved = split_changes(parent, cat)
    leaks = int(moved["leak"].sum()) if len(moved) else 0
    if leaks:
        warnings.warn(
            f"{leaks} image(s) the parent {parent.run_id!r} trained on are now in the test or benchmark "
            "split (their duplicate group changed); the new run's test accuracy will be optimistic.",
            UserWarning, stacklevel=2,
        )
    net = swap_head(parent.load_model(compile=False), len(classes), seed=head_seed, dropout=dropout)
    started = time.perf_counter()
    child = train(
        ws, initial_model=net, parent=parent, classes=classes, catalog=cat, cutoff=used_cutoff,
        seed=seed, max_epochs=max_epochs, patience=patience, run_id=run_id, verbose=verbose,
        **train_kwargs,
    )
    child.update_metrics({"lineage": {
        "parent": parent.run_id,
        "method": "head_swap",
        "classes_added": added,
        "classes_lost": lost["class"].tolist(),
        "classes_kept": changes.loc[changes["status"] == "kept", "class"].tolist(),
        "head_seed": head_seed,
        "split_changes": int(len(moved)),
        "split_leaks": leaks,
        "total_time_s": round(time.perf_counter() - started, 3),
    }})
    return child
