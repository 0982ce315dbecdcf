"""The lineage experiment: head swap vs from scratch over many generations of a growing library.

The write-up's central claim is cumulative: from scratch the model plateaus
after about 120 epochs at about 93%; after repeating the head swap dozens of
times each new generation plateaus after about 20 epochs at about 99%. One
generation on a small library (:func:`imgcls.experiments.headswap_experiment`)
cannot show that. This experiment grows a library the way a real project
does and trains every generation both ways:

* :func:`lineage_plan` decides how the library grows: new images every
  generation (unevenly over the classes), a new class in some generations,
  drawn from the full animal-mnist data (10 classes x 1,000 silhouettes);
* :func:`lineage_experiment` writes each generation's new images into
  ``library/<class>/`` of one workspace (rendered as the zoo sample renders
  them, :func:`imgcls.sample.render_silhouette`), extends the fixed benchmark
  set for new classes (:func:`imgcls.library.choose_benchmark`), takes one
  catalog snapshot with its splits, and trains on that same snapshot, per
  seed, the head-swap lineage (generation g is
  :func:`imgcls.training.next_generation` of generation g-1) and a run from
  scratch (:func:`imgcls.training.train`, same model, size, seed and
  stopping rule). Generation 1 is trained once per seed, from scratch, and
  starts both arms.

The table it returns has the columns of :data:`imgcls.experiments.LINEAGE_COLUMNS`
(see :mod:`imgcls.experiments.lineage_table`); the figures are in
:mod:`imgcls.experiments.lineage_plots`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from imgcls.core.checks import check_int
from imgcls.core.imagefiles import iter_image_files
from imgcls.core.workspace import DEFAULT_CUTOFF, open_workspace
from imgcls.experiments.headswap import _epochs_to_reach, _short
from imgcls.experiments.lineage_table import lineage_table, run_record
from imgcls.library import Library, assign_splits, choose_benchmark
from imgcls.runs import Run
from imgcls.sample import ZOO_CLASSES, load_animal_mnist, render_silhouette
from imgcls.training import class_changes, next_generation, train

__all__ = ["PLAN_COLUMNS", "QUICK_LINEAGE", "REDUCED_LINEAGE", "lineage_plan", "lineage_experiment"]

#: Columns of :func:`lineage_plan`.
PLAN_COLUMNS = ["generation", "class", "added", "total", "new"]
#: Silhouettes per class in animal-mnist.
_PER_CLASS = 1000

#: The configuration whose results are checked in (``benchmarks/results/lineage.json``):
#: 6 generations growing from 1,200 images of 6 classes to 3,000 images of
#: 9 classes, 2 seeds, mini_inception at 32 px, patience 10, at most 100 epochs.
REDUCED_LINEAGE: dict[str, Any] = {
    "plan": {"generations": 6, "initial_classes": 6, "initial_images": 1200, "final_images": 3000,
             "new_class_images": 120},
    "seeds": (0, 1), "model": "mini_inception", "image_size": 32, "max_epochs": 100, "patience": 10,
}
#: A tiny configuration for tests: 3 generations from 150 to 330 images, 1 seed,
#: simple_cnn at 32 px, 2 epochs.
QUICK_LINEAGE: dict[str, Any] = {
    "plan": {"generations": 3, "initial_classes": 3, "initial_images": 150, "final_images": 330,
             "new_classes": {2: 1}, "new_class_images": 50},
    "seeds": (0,), "model": "simple_cnn", "image_size": 32, "max_epochs": 2, "patience": 1,
}


def lineage_plan(
    *,
    generations: int = 6,
    initial_classes: int = 6,
    initial_images: int = 1200,
    final_images: int = 3000,
    new_classes: Mapping[int, int] | None = None,
    new_class_images: int = 120,
    cutoff: int = DEFAULT_CUTOFF,
    seed: int = 0,
) -> pd.DataFrame:
    """How the library grows, generation by generation.

    The library grows linearly in images from ``initial_images`` (generation 1)
    to ``final_images`` (the last generation). Classes are uneven, as in a
    real project: each class gets a popularity (a Dirichlet draw) that shares
    out the images a generation adds among the classes it already has. A new
    class enters with ``new_class_images`` images (a labelling round that
    takes it over the cutoff at once).

    Args:
        generations: Number of generations (1 or more).
        initial_classes: Classes of generation 1 (2-10).
        initial_images: Library images at generation 1 (each class at least ``cutoff``).
        final_images: Library images at the last generation.
        new_classes: Generation -> classes first seen in it (default: one new
            class in every even generation, while animal-mnist has classes left).
        new_class_images: Images a new class enters with (at least ``cutoff``).
        cutoff: Minimum images for a class to train (the workspace's).
        seed: Which classes come first, their popularity and the draws.

    Returns:
        One row per generation and class present in it: [generation, class,
        added (images new in this generation), total (images after it), new
        (the class is first seen in this generation)]. ``attrs`` holds the
        arguments (``seed``, ``cutoff``, ...).

    Raises:
        ValueError: Inconsistent numbers (a generation adds fewer images than
            its new classes need, a class would need more than the 1,000
            animal-mnist has, more than 10 classes...).
    """
    generations = check_int(generations, "generations")
    initial_classes = check_int(initial_classes, "initial_classes", 2, high=len(ZOO_CLASSES))
    cutoff = check_int(cutoff, "cutoff")
    initial_images = check_int(initial_images, "initial_images", initial_classes * cutoff,
                               fix=f"give each of the {initial_classes} classes at least cutoff={cutoff} images")
    final_images = check_int(final_images, "final_images", initial_images,
                             fix="the library only grows: final_images >= initial_images")
    new_class_images = check_int(new_class_images, "new_class_images", cutoff,
                                 fix="a new class enters over the cutoff")
    seed = check_int(seed, "seed", 0)
    if new_classes is None:
        left = len(ZOO_CLASSES) - initial_classes
        new_classes = {}
        for g in range(2, generations + 1, 2):
            if left:
                new_classes[g], left = 1, left - 1
    new_classes = {check_int(g, "new_classes generation", 2, high=generations): check_int(n, "new_classes count", 0)
                   for g, n in dict(new_classes).items()}
    if initial_classes + sum(new_classes.values()) > len(ZOO_CLASSES):
        raise ValueError(f"`new_classes` adds {sum(new_classes.values())} classes to {initial_classes}; "
                         f"animal-mnist has {len(ZOO_CLASSES)}. Received: new_classes={new_classes!r}")
    rng = np.random.default_rng(seed)
    order = [ZOO_CLASSES[i] for i in rng.permutation(len(ZOO_CLASSES))]
    popularity = dict(zip(order, rng.dirichlet(np.full(len(order), 5.0))))
    targets = [round(initial_images + (final_images - initial_images) * (g - 1) / max(generations - 1, 1))
               for g in range(1, generations + 1)]
    present = order[:initial_classes]
    totals = {c: cutoff for c in present}
    added: dict[str, int] = dict(totals)
    _share(added, present, initial_images - cutoff * initial_classes, popularity, rng)
    rows = [_plan_row(1, c, added[c], added[c], True) for c in present]
    totals = dict(added)
    for g in range(2, generations + 1):
        budget = targets[g - 1] - targets[g - 2]
        fresh = order[len(present):len(present) + new_classes.get(g, 0)]
        rest = budget - new_class_images * len(fresh)
        if rest < 0:
            raise ValueError(
                f"Generation {g} adds {budget} images but its {len(fresh)} new class(es) need "
                f"{new_class_images} each. Raise final_images or lower new_class_images.")
        added = {c: 0 for c in present}
        _share(added, present, rest, popularity, rng)
        added.update({c: new_class_images for c in fresh})
        present = present + fresh
        for c in present:
            totals[c] = totals.get(c, 0) + added[c]
            rows.append(_plan_row(g, c, added[c], totals[c], c in fresh))
    over = {c: n for c, n in totals.items() if n > _PER_CLASS}
    if over:
        raise ValueError(f"Classes {sorted(over)} would need more than the {_PER_CLASS} images animal-mnist "
                         f"has per class ({over}). Lower final_images or add classes earlier.")
    plan = pd.DataFrame(rows, columns=PLAN_COLUMNS)
    plan.attrs.update(generations=generations, initial_classes=initial_classes, initial_images=initial_images,
                      final_images=final_images, new_classes=new_classes, new_class_images=new_class_images,
                      cutoff=cutoff, seed=seed)
    return plan


def _plan_row(g: int, cls: str, added: int, total: int, new: bool) -> dict:
    return {"generation": g, "class": cls, "added": int(added), "total": int(total), "new": bool(new)}


def _share(added: dict[str, int], classes: list[str], n: int, popularity: Mapping[str, float],
           rng: np.random.Generator) -> None:
    """Add ``n`` images to ``classes`` in ``added``, drawn by popularity."""
    if n <= 0:
        return
    p = np.array([popularity[c] for c in classes])
    for c, k in zip(classes, rng.multinomial(n, p / p.sum())):
        added[c] += int(k)


def _as_plan(plan: pd.DataFrame | Mapping[str, Any] | None) -> pd.DataFrame:
    if plan is None:
        return lineage_plan()
    if isinstance(plan, Mapping):
        return lineage_plan(**plan)
    if isinstance(plan, pd.DataFrame) and set(PLAN_COLUMNS) <= set(plan.columns) and len(plan):
        return plan
    raise ValueError("`plan` must be the DataFrame from lineage_plan(), a dict of lineage_plan() options, "
                     f"or None. Received: {type(plan).__name__}")


def _write_images(ws, rows: pd.DataFrame, pools: dict[str, list[int]], images: np.ndarray, size: int,
                  rng: np.random.Generator) -> int:
    """Render and write each row's ``added`` silhouettes into ``library/<class>/``; return how many."""
    n = 0
    for cls, k in zip(rows["class"], rows["added"]):
        folder = ws.library / str(cls)
        folder.mkdir(parents=True, exist_ok=True)
        take, pools[cls] = pools[cls][:int(k)], pools[cls][int(k):]
        if len(take) < int(k):
            raise ValueError(f"animal-mnist has no {cls!r} silhouettes left ({int(k)} asked).")
        for i in take:
            Image.fromarray(render_silhouette(images[i], size, rng)).save(folder / f"{cls}_{i:05d}.png")
        n += len(take)
    return n


def _timed(fn: Callable[..., Run], *args: Any, **kwargs: Any) -> tuple[Run, float]:
    """Call ``fn`` and return its run and the CPU seconds of this process (all threads) it took."""
    cpu = time.process_time()
    run = fn(*args, **kwargs)
    return run, time.process_time() - cpu


def lineage_experiment(
    workspace: str | os.PathLike,
    *,
    plan: pd.DataFrame | Mapping[str, Any] | None = None,
    seeds: Sequence[int] = (0, 1),
    model: str = "mini_inception",
    image_size: int = 32,
    max_epochs: int | None = None,
    patience: int | None = None,
    batch_size: int = 32,
    cache: bool | str = "auto",
    verbose: int = 0,
    log: Callable[[str], Any] | None = None,
    on_generation: Callable[[pd.DataFrame], Any] | None = None,
) -> pd.DataFrame:
    """Head swap vs from scratch, generation after generation, on a growing library.

    For each generation of ``plan``:

    1. write its new images into ``library/<class>/`` of ``workspace``;
    2. scan the library, extend the fixed benchmark set for classes that
       have none (:func:`imgcls.library.choose_benchmark` with its defaults,
       the rule every training uses), assign the stable splits: one catalog
       snapshot for every run of this generation;
    3. per seed: in generation 1 train one run from scratch, the root of
       both arms; later, train on that snapshot the head-swap child of the
       seed's previous head-swap run and a run from scratch on the same
       classes, with the same model, image size, seed, optimiser and
       stopping rule. The arm that goes first alternates, so a slow spell
       of a shared CPU does not always hit the same arm.

    Each training call's CPU time (``time.process_time`` of this process,
    all threads) is measured beside the wall time the run records.

    Args:
        workspace: Folder for the workspace (created; must hold no library images).
        plan: The growth plan: a :func:`lineage_plan` table, a dict of its
            options, or None (its defaults: 6 generations, 1,200 -> 3,000 images).
        seeds: One lineage per seed (distinct ints >= 0).
        model: Registry name of the model trained from scratch.
        image_size: Side of the images written and of the model input.
        max_epochs: Upper bound on epochs (``train``'s default when None).
        patience: Early-stopping patience (``train``'s default when None).
        batch_size: Training batch size.
        cache: Keep decoded images in memory: ``"auto"``, ``True`` or ``False`` (see ``train``).
        verbose: Passed to the training calls.
        log: Optional callable taking one string (progress messages).
        on_generation: Optional callable given the table so far after each
            generation (e.g. to save partial results of a long run).

    Returns:
        The :func:`imgcls.experiments.lineage_table`: one row per generation,
        arm ("head_swap", "scratch") and seed (generation 1's run appears in
        both arms, ``shared=True``), with ``epochs_to_scratch_best`` the first
        epoch whose validation accuracy reaches the same seed's from-scratch
        best in that generation, and ``run_path``. ``attrs`` holds
        ``workspace``, ``plan`` (records) and ``settings``.
    """
    seeds = [check_int(s, "seeds", 0) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"`seeds` must be distinct ints >= 0, at least one. Received: seeds={seeds!r}")
    image_size = check_int(image_size, "image_size", 16, high=512)
    plan = _as_plan(plan)
    say = log if callable(log) else (lambda _msg: None)
    root = Path(os.fspath(workspace)).expanduser()
    ws = open_workspace(root, cutoff=int(plan.attrs.get("cutoff", DEFAULT_CUTOFF)))
    if next(iter_image_files(ws.library), None) is not None:
        raise ValueError(f"{str(ws.library)!r} already holds images; the lineage experiment grows its own "
                         "library. Pick an empty or missing folder.")
    data_seed = int(plan.attrs.get("seed", 0))
    rng = np.random.default_rng(data_seed + 1)
    images, labels = load_animal_mnist()
    pools = {c: [int(i) for i in rng.permutation(np.flatnonzero(labels == k))] for k, c in enumerate(ZOO_CLASSES)}
    common = {"model": model, "image_size": image_size, "max_epochs": max_epochs, "patience": patience,
              "batch_size": batch_size, "cache": cache, "verbose": verbose}
    rows: list[dict] = []
    heads: dict[int, Run] = {}
    first = int(plan["generation"].min())
    for g, plan_g in plan.groupby("generation", sort=True):
        g = int(g)
        n_new = _write_images(ws, plan_g, pools, images, image_size, rng)
        lib = Library(ws)
        lib.scan()
        choose_benchmark(lib)
        cat = assign_splits(lib.catalog)
        say(f"generation {g}: +{n_new} images -> {len(cat)} in {cat['label'].nunique()} classes "
            f"({int((cat['split'] == 'benchmark').sum())} benchmark)")
        for i, s in enumerate(seeds):
            if g == first:
                run, cpu = _timed(train, ws, seed=s, catalog=cat, **common)
                for arm in ("head_swap", "scratch"):
                    rows.append(run_record(run, arm=arm, seed=s, cpu_time_s=cpu, classes_added=run.classes,
                                           shared=True, generation=g))
                    rows[-1]["epochs_to_scratch_best"] = rows[-1]["best_epoch"]
                say(f"  -> generation {g} seed {s} (both arms): {_short(rows[-1])}, cpu {cpu:.0f} s")
                heads[s] = run
                continue
            changes = class_changes(ws, heads[s], catalog=cat)
            classes = list(changes.attrs["classes"])
            added = changes.loc[changes["status"] == "added", "class"].tolist()
            runs: dict[str, tuple[Run, float]] = {}
            order = ("head_swap", "scratch") if (i + g) % 2 == 0 else ("scratch", "head_swap")
            for arm in order:
                if arm == "head_swap":
                    runs[arm] = _timed(next_generation, ws, heads[s], seed=s, catalog=cat, max_epochs=max_epochs,
                                       patience=patience, batch_size=batch_size, cache=cache, verbose=verbose)
                else:
                    runs[arm] = _timed(train, ws, seed=s, catalog=cat, classes=classes, **common)
            target = runs["scratch"][0].metrics.get("training", {}).get("best_val_accuracy")
            for arm in ("head_swap", "scratch"):
                run, cpu = runs[arm]
                row = run_record(run, arm=arm, seed=s, cpu_time_s=cpu, classes_added=added, generation=g)
                row["epochs_to_scratch_best"] = _epochs_to_reach(run.history, target)
                rows.append(row)
                say(f"  -> generation {g}: {_short(row)}, cpu {cpu:.0f} s")
            heads[s] = runs["head_swap"][0]
        if on_generation is not None:
            on_generation(_finished_table(rows, ws, plan, common, seeds, data_seed))
    return _finished_table(rows, ws, plan, common, seeds, data_seed)


def _finished_table(rows, ws, plan, common, seeds, data_seed) -> pd.DataFrame:
    table = lineage_table(rows)
    table.attrs["workspace"] = str(ws.root)
    table.attrs["plan"] = plan.to_dict("records")
    table.attrs["settings"] = {**common, "seeds": seeds,
                               "cutoff": ws.cutoff, "data_seed": data_seed}
    return table
