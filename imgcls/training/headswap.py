"""Head-swap fine-tuning: the next generation of a model, and the experiment behind it.

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
* :func:`headswap_experiment` measures the claim on the zoo sample: generation
  1 trained by head swap and from scratch on exactly the same data and splits;
  :func:`summarize_headswap`, :func:`headswap_verdict`,
  :func:`headswap_speed_table` and :func:`plot_learning_curves` turn its
  table into numbers and a slide; :func:`read_headswap_benchmark` reads the
  committed results of ``benchmarks/headswap_vs_scratch.py`` into the same
  shapes.

Splits are a pure function of each image's content (see :mod:`imgcls.library`),
so an image keeps its train / val / test split from one generation to the
next; :func:`next_generation` checks it and warns if an image the parent
trained on would now be evaluated on.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imgcls.core.checks import check_int
from imgcls.core.workspace import UNKNOWN_CLASS, Workspace, as_workspace
from imgcls.runs import Run, load_run

__all__ = [
    "HEAD_LAYER",
    "DEFAULT_LABELLING",
    "swap_head",
    "class_changes",
    "split_changes",
    "next_generation",
    "headswap_experiment",
    "summarize_headswap",
    "headswap_verdict",
    "plot_learning_curves",
    "read_headswap_benchmark",
    "headswap_speed_table",
]

#: Name of the output layer every imgcls model has (see imgcls.models).
HEAD_LAYER = "predictions"
#: The labelling round of the headline experiment: a new class (zebra, 60
#: images) and 20 more images for the two classes just under the cutoff.
DEFAULT_LABELLING = {"zebra": 60, "sheep": 20, "giraffe": 20}


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
        >>> parent = load_run("production", ws).load_model(compile=False)
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
    from imgcls.library import Library

    return Library(ws).scan()


def _library_classes(catalog: pd.DataFrame, cutoff: int) -> tuple[list[str], pd.Series]:
    cat = catalog[(catalog["label"] != UNKNOWN_CLASS) & catalog["readable"].astype(bool)]
    counts = cat["label"].value_counts()
    return sorted(counts[counts >= cutoff].index.astype(str)), counts


def class_changes(
    parent_run: Run | str | os.PathLike,
    workspace: Workspace | str | os.PathLike,
    *,
    cutoff: int | None = None,
    catalog: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """How the library's class list changed since a run.

    Args:
        parent_run: The run (or a reference for :func:`imgcls.runs.load_run`).
        workspace: The workspace.
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
    parent = load_run(parent_run, ws)
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


def split_changes(parent_run: Run | str | os.PathLike, catalog: pd.DataFrame,
                  *, workspace: Workspace | str | os.PathLike | None = None) -> pd.DataFrame:
    """Images of the parent's snapshot whose split would differ now.

    Splits are hash-based, so this is normally empty; a change happens only
    when a new near duplicate joins an image's duplicate group. An image the
    parent trained on that is now in val / test / benchmark would make the
    next generation's evaluation optimistic.

    Args:
        parent_run: The parent run.
        catalog: A catalog with a ``split`` column (``assign_splits(Library.scan())``).
        workspace: Needed when ``parent_run`` is a run id.

    Returns:
        DataFrame [hash, label, split_parent, split_now, leak] (``leak`` True
        when the parent trained or validated on an image now held out).
    """
    parent = load_run(parent_run, workspace)
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
    parent_run: Run | str | os.PathLike,
    workspace: Workspace | str | os.PathLike,
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
        parent_run: The run to continue from (run, id, folder, "production", "latest").
        workspace: The workspace.
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
    from imgcls.library import assign_splits
    from imgcls.training import train

    ws = as_workspace(workspace)
    parent = load_run(parent_run, ws)
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
    changes = class_changes(parent, ws, cutoff=cutoff, catalog=cat)
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
    run = train(
        ws, initial_model=net, parent=parent, classes=classes, catalog=cat, cutoff=used_cutoff,
        seed=seed, max_epochs=max_epochs, patience=patience, run_id=run_id, verbose=verbose,
        **train_kwargs,
    )
    run.update_metrics({"lineage": {
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
    return run


# =========================================================================== experiment
def _epochs_to_reach(history: pd.DataFrame, target: float | None, metric: str = "val_accuracy") -> float:
    """First (1-based) epoch whose ``metric`` reaches ``target`` (NaN if never)."""
    if target is None or metric not in history or not len(history):
        return float("nan")
    hit = history.loc[history[metric] >= target - 1e-9, "epoch"]
    return float(hit.min()) if len(hit) else float("nan")


def _run_row(run: Run, *, arm: str, seed: int, generation: int) -> dict:
    m = run.metrics
    t, te, be = m.get("training", {}), m.get("test", {}), m.get("benchmark", {})
    return {
        "arm": arm, "seed": seed, "generation": generation, "run_id": run.run_id, "run_path": str(run.path),
        "parent": run.parent, "n_classes": run.num_classes,
        "epochs_trained": t.get("epochs_trained"), "best_epoch": t.get("best_epoch"),
        "wall_time_s": t.get("wall_time_s"), "mean_epoch_time_s": t.get("mean_epoch_time_s"),
        "best_val_accuracy": t.get("best_val_accuracy"),
        "test_accuracy": te.get("accuracy"), "test_n": te.get("n"),
        "benchmark_accuracy": be.get("accuracy"), "benchmark_n": be.get("n"),
    }


def headswap_experiment(
    workspace_root: str | os.PathLike,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    model: str = "mini_inception",
    image_size: int = 64,
    max_epochs: int | None = None,
    patience: int | None = None,
    labelling: Mapping[str, int] | None = None,
    pool_size: int = 1000,
    batch_size: int = 32,
    cache: bool | str = "auto",
    verbose: int = 0,
    log: Any = None,
) -> pd.DataFrame:
    """Head swap vs from scratch for generation 1 of the zoo sample.

    1. Build the zoo sample in ``workspace_root`` (an empty or missing folder).
    2. For each seed, train generation 0 from scratch on the classes over the
       cutoff.
    3. A labelling round grows the library (:func:`imgcls.sample.simulate_labelling`
       with ``labelling``: by default a new class, zebra, with 60 images and
       20 more for sheep and giraffe so they make the cutoff); benchmark images
       are chosen for the new class.
    4. For each seed, train generation 1 twice on exactly the same catalog,
       classes and splits, with the same model, seed, optimiser and stopping
       rule: by head swap from that seed's generation 0
       (:func:`next_generation`) and from scratch. The arm that goes first
       alternates with the seed, so a slow spell of a shared CPU does not
       always hit the same arm.

    Args:
        workspace_root: Folder for the sample workspace (created).
        seeds: One repetition per seed.
        model: Registry name of the model.
        image_size: Sample image side and model input size.
        max_epochs: Upper bound on epochs (``train``'s default when None).
        patience: Early-stopping patience (``train``'s default when None).
        labelling: Class -> images moved from the pool into the library.
        pool_size: Unlabelled pool of the sample (must hold the labelling).
        batch_size: Training batch size.
        cache: Keep decoded images in memory (faster epochs): ``"auto"``
            (default, when they fit), ``True`` or ``False`` (see ``train``).
        verbose: Passed to ``train``.
        log: Optional callable taking one string (progress messages).

    Returns:
        One row per trained run: [arm ("generation0", "head_swap",
        "scratch"), seed, generation, run_id, run_path, parent, n_classes,
        epochs_trained, best_epoch, wall_time_s, mean_epoch_time_s,
        best_val_accuracy, test_accuracy, test_n, benchmark_accuracy,
        benchmark_n, epochs_to_scratch_best] where ``epochs_to_scratch_best``
        is, for both generation-1 arms, the first epoch whose validation
        accuracy reaches the from-scratch run's best (same seed; for the
        from-scratch arm it is its best epoch). ``attrs["workspace"]`` is the
        workspace root.
    """
    from imgcls.library import Library, assign_splits, choose_benchmark
    from imgcls.sample import build_sample, simulate_labelling
    from imgcls.training import train

    seeds = [int(s) for s in seeds]
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"`seeds` must be distinct ints >= 0, at least one. Received: seeds={seeds!r}")
    labelling = dict(DEFAULT_LABELLING if labelling is None else labelling)
    say = log if callable(log) else (lambda _msg: None)
    root = Path(os.fspath(workspace_root)).expanduser()
    say(f"building the zoo sample in {root}")
    ws = build_sample(root, image_size=image_size, pool_size=pool_size, seed=0)
    common = dict(model=model, image_size=image_size, max_epochs=max_epochs, patience=patience,
                  batch_size=batch_size, cache=cache, verbose=verbose)

    rows: list[dict] = []
    gen0: dict[int, Run] = {}
    cat0 = assign_splits(Library(ws).scan())
    for s in seeds:
        say(f"generation 0, seed {s}: training from scratch")
        gen0[s] = train(ws, seed=s, catalog=cat0, **common)
        rows.append(_run_row(gen0[s], arm="generation0", seed=s, generation=0))
        say(f"  -> {_short(rows[-1])}")

    say(f"labelling round: {labelling}")
    simulate_labelling(ws, labelling, seed=0)
    lib = Library(ws)
    choose_benchmark(lib, per_class=5)
    cat1 = assign_splits(lib.scan())

    for i, s in enumerate(seeds):
        order = ("head_swap", "scratch") if i % 2 == 0 else ("scratch", "head_swap")
        runs: dict[str, Run] = {}
        for arm in order:
            say(f"generation 1, seed {s}: {arm}")
            if arm == "head_swap":
                runs[arm] = next_generation(gen0[s], ws, seed=s, catalog=cat1, max_epochs=max_epochs,
                                            patience=patience, batch_size=batch_size, cache=cache,
                                            verbose=verbose)
            else:
                classes = class_changes(gen0[s], ws, catalog=cat1).attrs["classes"]
                runs[arm] = train(ws, seed=s, catalog=cat1, classes=classes, **common)
        target = runs["scratch"].metrics.get("training", {}).get("best_val_accuracy")
        for arm in ("head_swap", "scratch"):
            row = _run_row(runs[arm], arm=arm, seed=s, generation=1)
            row["epochs_to_scratch_best"] = _epochs_to_reach(runs[arm].history, target)
            rows.append(row)
            say(f"  -> {_short(row)}")
    df = pd.DataFrame(rows)
    df.attrs["workspace"] = str(ws.root)
    return df


def _short(row: Mapping[str, Any]) -> str:
    def pct(v):
        return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}%"

    return (f"{row['arm']} seed {row['seed']}: {row['epochs_trained']} epochs (best {row['best_epoch']}), "
            f"{row['wall_time_s']:.0f} s, val {pct(row['best_val_accuracy'])}, test {pct(row['test_accuracy'])}, "
            f"benchmark {pct(row['benchmark_accuracy'])}")


_SUMMARY_METRICS = ("epochs_trained", "best_epoch", "epochs_to_scratch_best", "wall_time_s",
                    "best_val_accuracy", "test_accuracy", "benchmark_accuracy")


def summarize_headswap(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation, min and max of each metric per arm.

    Args:
        results: The table from :func:`headswap_experiment`.

    Returns:
        DataFrame indexed by arm with columns ``(metric, statistic)``
        (``statistic`` in mean, std, min, max) and ``n_seeds``.
    """
    if not isinstance(results, pd.DataFrame) or "arm" not in results:
        raise ValueError("`results` must be the DataFrame returned by headswap_experiment().")
    metrics = [m for m in _SUMMARY_METRICS if m in results]
    data = results[["arm", *metrics]].copy()
    data[metrics] = data[metrics].apply(pd.to_numeric, errors="coerce")
    out = data.groupby("arm", sort=False)[metrics].agg(["mean", "std", "min", "max"])
    out["n_seeds"] = results.groupby("arm", sort=False)["seed"].nunique()
    return out


def headswap_verdict(results: pd.DataFrame, *, epoch_ratio: float = 1 / 3,
                     max_test_drop: float = 0.005) -> dict[str, Any]:
    """Does the head swap meet the write-up's claim on this data?

    Two criteria, on means over seeds:

    * speed: the head-swap run reaches the from-scratch run's best
      validation accuracy within ``epoch_ratio`` of the epochs the
      from-scratch run needed to reach it (its best epoch);
    * quality: its test accuracy is lower than the from-scratch run's by at
      most ``max_test_drop`` (0.005 = half a point).

    Args:
        results: The table from :func:`headswap_experiment`.
        epoch_ratio: Required ratio of epochs (head swap / from scratch).
        max_test_drop: Largest allowed drop in test accuracy.

    Returns:
        A JSON-able dict: per-seed ratios, the mean numbers, ``speed_ok``,
        ``quality_ok``, ``claim_holds`` and a one-paragraph ``text``.
        A head-swap run that never reached the target counts as
        ``max_epochs`` epochs (its ``epochs_trained``) for the ratio.
    """
    if not isinstance(results, pd.DataFrame) or "arm" not in results:
        raise ValueError("`results` must be the DataFrame returned by headswap_experiment().")
    hs = results[results["arm"] == "head_swap"].set_index("seed")
    sc = results[results["arm"] == "scratch"].set_index("seed")
    seeds = sorted(set(hs.index) & set(sc.index))
    if not seeds:
        raise ValueError("`results` has no seed with both a head_swap and a scratch run.")
    per_seed = []
    for s in seeds:
        reach = hs.at[s, "epochs_to_scratch_best"]
        reached = bool(pd.notna(reach))
        reach_val = float(reach) if reached else float(hs.at[s, "epochs_trained"])
        scratch_epochs = float(sc.at[s, "best_epoch"])
        per_seed.append({
            "seed": int(s),
            "head_swap_epochs_to_target": reach_val,
            "reached": reached,
            "scratch_epochs_to_best": scratch_epochs,
            "epoch_ratio": reach_val / scratch_epochs if scratch_epochs else float("nan"),
            "head_swap_test": float(hs.at[s, "test_accuracy"]),
            "scratch_test": float(sc.at[s, "test_accuracy"]),
            "test_diff": float(hs.at[s, "test_accuracy"]) - float(sc.at[s, "test_accuracy"]),
            "head_swap_wall_s": float(hs.at[s, "wall_time_s"]),
            "scratch_wall_s": float(sc.at[s, "wall_time_s"]),
        })
    ps = pd.DataFrame(per_seed)
    mean_reach = float(ps["head_swap_epochs_to_target"].mean())
    mean_scratch = float(ps["scratch_epochs_to_best"].mean())
    ratio = mean_reach / mean_scratch if mean_scratch else float("nan")
    test_diff = float(ps["test_diff"].mean())
    speed_ok = bool(ratio <= epoch_ratio + 1e-9 and ps["reached"].all())
    quality_ok = bool(test_diff >= -max_test_drop - 1e-9)
    text = (
        f"Over {len(seeds)} seed(s), the head-swap run reached the from-scratch run's best validation "
        f"accuracy after {mean_reach:.1f} epochs on average, against {mean_scratch:.1f} epochs for the "
        f"from-scratch run to reach it (ratio {ratio:.2f}; target <= {epoch_ratio:.2f})"
        + ("" if ps["reached"].all() else f"; it never reached it in {int((~ps['reached']).sum())} seed(s)")
        + f". Test accuracy: head swap {ps['head_swap_test'].mean():.1%} vs scratch "
        f"{ps['scratch_test'].mean():.1%} ({test_diff * 100:+.1f} points; allowed drop "
        f"{max_test_drop * 100:.1f}). Wall time: {ps['head_swap_wall_s'].mean():.0f} s vs "
        f"{ps['scratch_wall_s'].mean():.0f} s. "
        + ("The claim holds on this data." if speed_ok and quality_ok else
           "The claim does not fully hold on this data: "
           + ", ".join(x for x, ok in (("speed", speed_ok), ("test accuracy", quality_ok)) if not ok)
           + " criterion missed.")
    )
    return {
        "seeds": [int(s) for s in seeds],
        "per_seed": ps.to_dict("records"),
        "mean_head_swap_epochs_to_target": mean_reach,
        "mean_scratch_epochs_to_best": mean_scratch,
        "epoch_ratio": ratio,
        "epoch_ratio_target": epoch_ratio,
        "mean_test_diff": test_diff,
        "max_test_drop": max_test_drop,
        "speed_ok": speed_ok,
        "quality_ok": quality_ok,
        "claim_holds": bool(speed_ok and quality_ok),
        "text": text,
    }


def _curves(results: Any) -> tuple[pd.DataFrame, dict[tuple[str, int], pd.DataFrame]]:
    """(results table, {(arm, seed): history}) from an experiment table or a read benchmark."""
    if isinstance(results, pd.DataFrame):
        if not {"arm", "seed", "run_path"} <= set(results.columns):
            raise ValueError("`results` must be the table from headswap_experiment() or "
                             "the dict from read_headswap_benchmark().")
        hist = {(r["arm"], int(r["seed"])): Run(r["run_path"]).history
                for _, r in results.iterrows() if r["arm"] in ("head_swap", "scratch")}
        return results, hist
    if isinstance(results, Mapping) and {"runs", "curves"} <= set(results):
        hist = {}
        for label, h in results["curves"].items():
            arm, _, seed = str(label).partition("/seed")
            if arm in ("head_swap", "scratch") and seed.isdigit():
                hist[(arm, int(seed))] = h
        return results["runs"], hist
    raise ValueError("`results` must be the table from headswap_experiment() or the dict from "
                     "read_headswap_benchmark().")


def headswap_speed_table(
    results: Any,
    *,
    fractions: Sequence[float] = (0.9, 0.95, 1.0),
    at_epochs: Sequence[int] = (1, 3, 5, 10),
) -> pd.DataFrame:
    """Speed of the two generation-1 arms, less hostage to one lucky epoch.

    "Epochs to reach the from-scratch best" compares against a maximum over
    many noisy validation epochs; with a small validation set one lucky epoch
    sets a target the other arm may never hit. This table adds milder
    targets and the accuracy each arm has after a fixed number of epochs.

    Args:
        results: The :func:`headswap_experiment` table or the dict from
            :func:`read_headswap_benchmark`.
        fractions: Targets as fractions of the from-scratch run's best
            validation accuracy (same seed).
        at_epochs: Epochs at which to read each arm's validation accuracy.

    Returns:
        One row per seed and arm: ``reach_<pct>`` = first epoch whose
        validation accuracy reaches ``pct``% of the from-scratch best (NaN if
        never), ``val_at_<n>`` = validation accuracy after epoch ``n`` (NaN
        if the run stopped earlier), and ``best_val_accuracy``.
    """
    table, hist = _curves(results)
    seeds = sorted({s for _, s in hist})
    rows = []
    for s in seeds:
        if ("scratch", s) not in hist or ("head_swap", s) not in hist:
            continue
        best = float(hist[("scratch", s)]["val_accuracy"].max())
        for arm in ("head_swap", "scratch"):
            h = hist[(arm, s)]
            row: dict[str, Any] = {"seed": s, "arm": arm, "best_val_accuracy": float(h["val_accuracy"].max())}
            for f in fractions:
                row[f"reach_{round(f * 100)}"] = _epochs_to_reach(h, f * best)
            by_epoch = h.set_index("epoch")["val_accuracy"]
            for n in at_epochs:
                row[f"val_at_{n}"] = float(by_epoch.get(n, np.nan))
            rows.append(row)
    return pd.DataFrame(rows)


def _finding(results: pd.DataFrame, means: Mapping[str, pd.Series]) -> str:
    """Headline of the learning-curve slide, from the experiment's numbers."""
    hs = results[results["arm"] == "head_swap"]
    sc = results[results["arm"] == "scratch"]
    reach = pd.to_numeric(hs["epochs_to_scratch_best"], errors="coerce")
    scratch_best = pd.to_numeric(sc["best_epoch"], errors="coerce").mean()
    if len(reach) and reach.notna().all():
        return (f"Head swap reaches the from-scratch best in {reach.mean():.0f} epochs "
                f"instead of {scratch_best:.0f}")
    missed = f"missed the from-scratch best in {int(reach.isna().sum())} of {len(reach)} seeds"
    if "head_swap" in means and "scratch" in means:
        common = means["head_swap"].index.intersection(means["scratch"].index)
        at = [e for e in (10, 5, 3, 1) if e in common]
        if at:
            a, b = float(means["head_swap"][at[0]]), float(means["scratch"][at[0]])
            if a > b:
                return (f"Head swap leads after {at[0]} epochs ({a:.0%} vs {b:.0%} val accuracy) "
                        f"but {missed}")
    return f"Head swap {missed} (from scratch needed {scratch_best:.0f} epochs)"


def plot_learning_curves(
    runs: Any,
    *,
    metric: str = "val_accuracy",
    workspace: Workspace | str | os.PathLike | None = None,
    title: str | None = None,
):
    """Learning curves of several runs on one 16:9 chart.

    Args:
        runs: One of

            * the :func:`headswap_experiment` table: the generation-1 arms are
              drawn, one line per seed, coloured by arm, with the from-scratch
              best validation accuracy as a dashed line;
            * the dict from :func:`read_headswap_benchmark` (the same chart
              from the committed benchmark numbers);
            * a list of runs / run references, or a dict ``label -> run`` or
              ``label -> history DataFrame``.
        metric: History column to draw (``"val_accuracy"``, ``"val_loss"``,
            ``"accuracy"``, ``"loss"``).
        workspace: Needed when runs are given by id.
        title: Override the generated title (for the experiment it states
            the finding).

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    import matplotlib.ticker as mticker
    from matplotlib.figure import Figure

    colors = {"head_swap": "#d95f02", "scratch": "#1b9e77", "generation0": "#7570b3"}
    curves: list[tuple[str, str, pd.DataFrame]] = []  # (label, colour group, history)
    results: pd.DataFrame | None = None
    if isinstance(runs, pd.DataFrame):
        if not {"arm", "run_path", "seed"} <= set(runs.columns):
            raise ValueError("A DataFrame for `runs` must be the table from headswap_experiment().")
        results = runs
        gen1 = runs[runs["arm"].isin(["head_swap", "scratch"])]
        for _, r in gen1.sort_values(["arm", "seed"]).iterrows():
            curves.append((f"{r['arm'].replace('_', ' ')} (seed {r['seed']})", r["arm"],
                           Run(r["run_path"]).history))
    elif isinstance(runs, Mapping) and {"runs", "curves"} <= set(runs):
        results = runs["runs"]
        for label, hist in sorted(runs["curves"].items()):
            arm, _, seed = str(label).partition("/")
            curves.append((f"{arm.replace('_', ' ')} ({seed.replace('seed', 'seed ')})", arm, hist))
    else:
        items = runs.items() if isinstance(runs, Mapping) else [(None, r) for r in runs]
        for i, (label, ref) in enumerate(items):
            if isinstance(ref, pd.DataFrame):
                curves.append((str(label), f"run{i}", ref))
                continue
            run = load_run(ref, workspace)
            kind = "head swap" if run.parent else "from scratch"
            curves.append((label or f"{run.run_id} ({kind})", f"run{i}", run.history))
    if not curves:
        raise ValueError("`runs` holds no run to plot.")

    target = None
    if results is not None and metric == "val_accuracy" and "arm" in results:
        sc = results[results["arm"] == "scratch"]
        if len(sc):
            target = float(pd.to_numeric(sc["best_val_accuracy"], errors="coerce").mean())

    fig = Figure(figsize=(13.333, 7.5), layout="constrained")
    ax = fig.add_subplot()
    palette = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"]
    groups: list[str] = []
    by_group: dict[str, list[pd.Series]] = {}
    experiment = results is not None
    for label, group, hist in curves:
        if metric not in hist:
            continue
        if group not in groups:
            groups.append(group)
        color = colors.get(group) or palette[groups.index(group) % len(palette)]
        if experiment:  # thin lines per seed, the mean in bold below
            ax.plot(hist["epoch"], hist[metric], color=color, lw=1.2, alpha=0.35)
            by_group.setdefault(group, []).append(hist.set_index("epoch")[metric])
        else:
            ax.plot(hist["epoch"], hist[metric], color=color, lw=2.5, alpha=0.85, label=label)
    means: dict[str, pd.Series] = {}
    for group, series in by_group.items():
        table = pd.concat(series, axis=1)
        means[group] = table.dropna().mean(axis=1)  # while every seed is still training
        ax.plot(means[group].index, means[group].to_numpy(), color=colors.get(group, "black"), lw=3.5,
                label=f"{group.replace('_', ' ')} (mean of {len(series)} seed(s); thin: each seed)")
    if target is not None:
        ax.axhline(target, color="grey", ls="--", lw=2, label=f"from-scratch best (mean {target:.1%})")
    if title is None:
        title = metric.replace("_", " ") + " per epoch"
        if target is not None:
            title = _finding(results, means)
    import textwrap

    fig.suptitle(textwrap.fill(title, 62), x=0.01, ha="left", fontsize=24, fontweight="bold")
    if results is not None and "seed" in results:
        ax.set_title(f"generation 1 of the zoo sample, {results['seed'].nunique()} seed(s); "
                     "same data, splits, model, optimiser and stopping rule in both arms",
                     loc="left", fontsize=15, color="#555555", pad=10)
    ax.set_xlabel("epoch", fontsize=18)
    ax.set_ylabel(metric.replace("_", " "), fontsize=18)
    ax.tick_params(labelsize=15)
    if metric.endswith("accuracy"):
        ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=0))
    ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=13, frameon=False, loc="lower right" if metric.endswith("accuracy") else "upper right")
    return fig


def read_headswap_benchmark(path: str | os.PathLike) -> dict[str, Any]:
    """Read the JSON written by ``benchmarks/headswap_vs_scratch.py``.

    So a notebook can show the committed headline numbers without re-running
    the experiment.

    Args:
        path: The results file (``benchmarks/results/headswap_vs_scratch.json``).

    Returns:
        ``{"runs": DataFrame (the :func:`headswap_experiment` table without
        run paths; works with :func:`summarize_headswap` and
        :func:`headswap_verdict`), "verdict": dict, "ratios": dict,
        "settings": dict, "curves": {"<arm>/seed<n>": history DataFrame}
        (for :func:`plot_learning_curves`), "total_time_s": float}``.
    """
    import json

    p = Path(os.fspath(path)).expanduser()
    if not p.is_file():
        raise ValueError(
            f"No benchmark results at {str(p)!r}. Run `python benchmarks/headswap_vs_scratch.py` "
            "(or pass the path of its JSON output)."
        )
    data = json.loads(p.read_text(encoding="utf-8"))
    runs = pd.DataFrame(data.get("runs", []))
    curves = {
        label: pd.DataFrame({k: v for k, v in c.items() if v is not None})
        for label, c in (data.get("learning_curves") or {}).items()
        if not label.startswith("generation0")
    }
    return {"runs": runs, "verdict": data.get("verdict", {}), "ratios": data.get("ratios", {}),
            "settings": data.get("settings", {}), "curves": curves,
            "total_time_s": data.get("total_time_s")}
