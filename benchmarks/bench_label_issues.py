"""Claim: label issues are found from out-of-sample probabilities of a K-fold linear head on a
run's embeddings - on scikit-learn's digits with 5% of labels flipped, among the top-ranked images
as many as were flipped, precision (= recall) >= 0.9, beating cleanlab on 5-fold logistic
regression from the raw pixels (about 0.86) - and ranking a 10,000-image library from cached
embeddings takes under a minute.

Steps, all through the public API:

1. **digits**: ``sklearn.datasets.load_digits`` (1,797 images, all ten classes) rendered as a
   library of 32x32 PNGs, 5% of the images filed under a wrong class chosen at random;
2. the **anchor**: :func:`imgcls.cleaning.linear_head_probs` on the raw 8x8 pixels (5-fold
   logistic regression, scikit-learn's C=1 and the package's C beside it) and
   :func:`imgcls.cleaning.label_issue_table` (cleanlab);
3. two generations as the loop makes them: generation 1 (``mini_inception`` from scratch,
   :func:`imgcls.training.train`) on 60% of the images, then the library grows to all of them and
   generation 2 is trained by head swap (:func:`imgcls.training.next_generation`);
4. :func:`imgcls.cleaning.find_label_issues` for generation 2 with its own embeddings (the
   default), with its parent's, with several regularisations of the head, in-sample (the run's
   own softmax on images it trained on; the linear head fitted and scored on the same images),
   and optionally (``--kfold``) K full trainings; plus the cross-class duplicates and outliers
   the same embeddings give;
5. **scale**: a 10,000-image library (digits shifted and noised) embedded once with generation 2,
   then the whole scan again from the cached embeddings (timed), plus the ranking alone on
   10,000 x 1,536 features (Inception-v4's width);
6. **zoo**: the zoo sample with 30 labels flipped and its default model (reported only: its own
   errors at ~68% test accuracy swamp a few dozen flipped labels).

Usage::

    python benchmarks/bench_label_issues.py [--quick] [--kfold] [--skip-zoo] [--skip-scale]

Writes ``benchmarks/results/label_issues.json`` (``--quick`` writes only where ``--out`` says).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import load_average, machine_info, result_path, start_benchmark, write_result

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from imgcls.cleaning import (  # noqa: E402
    Embeddings,
    find_label_issues,
    label_issue_table,
    library_embeddings,
    linear_head_probs,
    rank_label_issues,
)
from imgcls.core import open_workspace  # noqa: E402
from imgcls.library import Library  # noqa: E402

RESULT = result_path("label_issues")
SIZE = 32
CURVE_POINTS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)


# --------------------------------------------------------------------------- libraries
def digit_png(path: Path, pixels: np.ndarray) -> None:
    """An 8x8 digit (0..16) as a SIZE x SIZE RGB picture."""
    grey = Image.fromarray((pixels.reshape(8, 8) * (255 / 16)).astype(np.uint8))
    Image.merge("RGB", [grey.resize((SIZE, SIZE), Image.BILINEAR)] * 3).save(path)


def flip_labels(y: np.ndarray, share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(noisy labels, indices flipped): ``share`` of the labels moved to another class at random."""
    m = int(round(share * len(y)))
    idx = rng.choice(len(y), m, replace=False)
    noisy = y.copy()
    noisy[idx] = (y[idx] + rng.integers(1, 10, m)) % 10
    return noisy, np.sort(idx)


def digits_library(root: Path, *, share: float, seed: int):
    """(workspace, pixels (n, 64), true labels, given labels, flipped file paths)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    given, flipped = flip_labels(y, share, np.random.default_rng(seed))
    ws = open_workspace(root, cutoff=40)
    paths = []
    for i, (pixels, label) in enumerate(zip(x, given)):
        folder = ws.library / f"digit_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"d{i:04d}.png"
        digit_png(path, pixels)
        paths.append(str(path))
    return ws, x, y, given, {paths[i] for i in flipped}


def big_digits_library(root: Path, n: int, *, share: float, seed: int) -> tuple[object, set[str]]:
    """A library of ``n`` digits (the 1,797 shifted by up to 2 px and noised), ``share`` flipped."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(x), n)
    labels, flipped = flip_labels(y[pick], share, rng)
    ws = open_workspace(root, cutoff=40)
    paths = []
    for i, (j, label) in enumerate(zip(pick, labels)):
        img = x[j].reshape(8, 8) * (255 / 16)
        img = np.asarray(Image.fromarray(img.astype(np.uint8)).resize((SIZE, SIZE), Image.BILINEAR), float)
        dy, dx = rng.integers(-2, 3, 2)
        img = np.roll(img, (dy, dx), axis=(0, 1)) + rng.normal(0, 8, img.shape)
        img = np.clip(img, 0, 255).astype(np.uint8)
        folder = ws.library / f"digit_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"b{i:05d}.png"
        Image.merge("RGB", [Image.fromarray(img)] * 3).save(path)
        paths.append(str(path))
    return ws, {paths[i] for i in flipped}


# --------------------------------------------------------------------------- scoring
def ranking_scores(issues: pd.DataFrame, flipped: set[str], new_images: set[str] | None = None) -> dict:
    """Precision among the top-m (m = number flipped), the precision-recall curve, cleanlab's flag;
    with ``new_images``, precision@m within the images added since the parent and within the others."""
    hit = issues["path"].isin(flipped).to_numpy()
    m = len(flipped)
    curve = []
    for f in CURVE_POINTS:
        k = max(1, int(round(f * m)))
        found = int(hit[:k].sum())
        curve.append({"k": k, "k_over_flipped": f, "precision": found / k, "recall": found / m})
    flagged = issues["is_issue"].to_numpy()
    return {
        "n_ranked": int(len(issues)),
        "n_flipped": m,
        "n_flipped_ranked": int(hit.sum()),
        "precision_at_n_flipped": float(hit[:m].sum() / m),
        "pr_curve": curve,
        "flagged": int(flagged.sum()),
        "flagged_precision": float(hit[flagged].mean()) if flagged.any() else None,
        "flagged_recall": float(hit[flagged].sum() / m),
    } | ({} if new_images is None else {
        f"precision_at_n_flipped_{name}": _precision_within(issues, flipped, part)
        for name, part in (("new_images", new_images), ("old_images", set(issues["path"]) - new_images))})


def _precision_within(issues: pd.DataFrame, flipped: set[str], part: set[str]) -> float:
    sub = issues[issues["path"].isin(part)]
    m = len(flipped & part)
    return float(sub["path"].head(m).isin(flipped).sum() / m) if m else float("nan")


def show(name: str, scores: dict) -> None:
    print(f"  {name:<34} precision@{scores['n_flipped']} = {scores['precision_at_n_flipped']:.3f}   "
          f"flagged {scores['flagged']} (precision {scores['flagged_precision'] or 0:.3f}, "
          f"recall {scores['flagged_recall']:.3f})", flush=True)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - t0, 2)


# --------------------------------------------------------------------------- parts
def run_digits(tmp: Path, args) -> dict:
    import shutil

    from imgcls.cleaning import class_outliers, cross_class_duplicates
    from imgcls.training import next_generation, train

    ws, pixels, truth, given, flipped = digits_library(tmp / "digits", share=args.share, seed=args.seed)
    catalog = Library(ws).scan()
    out: dict = {"n_images": int(len(catalog)), "n_classes": 10, "n_flipped": len(flipped),
                 "flip_share": args.share, "seed": args.seed, "image_size": SIZE}
    print(f"digits: {len(catalog)} images, {len(flipped)} flipped", flush=True)

    # The anchor: cleanlab on 5-fold logistic regression from the raw pixels (scikit-learn's C=1,
    # and the package's default C beside it).
    rows = catalog[["path", "label"]].copy()
    index = {str(ws.library / f"digit_{g}" / f"d{i:04d}.png"): i for i, g in enumerate(given)}
    x = pixels[[index[p] for p in rows["path"]]]
    for key, C in (("anchor_raw_pixels", 1.0), ("anchor_raw_pixels_C_0.01", 0.01)):
        probs, classes = linear_head_probs(x, rows["label"], folds=5, seed=args.seed, C=C)
        out[key] = ranking_scores(label_issue_table(rows, probs, classes), flipped)
        show(f"anchor: raw pixels, 5-fold LR, C={C}", out[key])

    # Two generations as the loop makes them: generation 1 on the library as it was (60% of the
    # images), the library grows to all of them, generation 2 by head swap on the whole library.
    later = catalog.sample(frac=0.4, random_state=args.seed)
    side = tmp / "not-yet-added"
    for path, label in zip(later["path"], later["label"]):
        (side / label).mkdir(parents=True, exist_ok=True)
        shutil.move(path, side / label / Path(path).name)
    fit = dict(max_epochs=args.epochs, patience=args.patience, augmentation={"flip": False}, verbose=0)
    gen1, out["train_gen1_s"] = timed(train, ws, model="mini_inception", image_size=SIZE, seed=0, **fit)
    for path, label in zip(later["path"], later["label"]):
        shutil.move(side / label / Path(path).name, path)
    gen2, out["train_gen2_s"] = timed(next_generation, ws, gen1, **fit)
    for key, run in (("gen1", gen1), ("gen2", gen2)):
        m = run.metrics.get("test", {})
        out[key] = {"run_id": run.run_id, "epochs": int(len(run.history)), "n_trained_on": int(len(run.splits)),
                    "test_accuracy": m.get("accuracy"), "note": "test accuracy against the noisy labels"}
    print(f"  gen1 ({out['gen1']['n_trained_on']} images) test acc {out['gen1']['test_accuracy']}, "
          f"gen2 ({out['gen2']['n_trained_on']}) {out['gen2']['test_accuracy']} "
          f"({out['train_gen1_s']} s + {out['train_gen2_s']} s)", flush=True)

    new_images = set(later["path"])
    emb_own, out["embed_own_s"] = timed(library_embeddings, ws, gen2, catalog=catalog)
    emb_parent, out["embed_parent_s"] = timed(library_embeddings, ws, gen2, prefer_parent=True, catalog=catalog)
    issues, out["rank_from_cache_s"] = timed(find_label_issues, ws, gen2, save=False)
    out["default_own_embeddings"] = ranking_scores(issues, flipped, new_images)
    out["default_own_embeddings"]["embeddings_run"] = issues.attrs["embeddings_run"]
    show("default: gen2's own embeddings", out["default_own_embeddings"])
    issues = find_label_issues(ws, gen2, prefer_parent=True, save=False)
    out["parent_embeddings"] = ranking_scores(issues, flipped, new_images)
    out["parent_embeddings"]["embeddings_run"] = issues.attrs["embeddings_run"]
    show("gen2's parent (gen1) embeddings", out["parent_embeddings"])
    out["C_sweep"] = {}
    for name, emb in (("own", emb_own), ("parent", emb_parent)):
        for C in (0.001, 0.01, 0.1, 1.0):
            issues, _ = rank_label_issues(emb, C=C, seed=args.seed)
            scores = ranking_scores(issues, flipped)
            out["C_sweep"][f"{name}_C_{C}"] = {k: scores[k] for k in
                                               ("precision_at_n_flipped", "flagged", "flagged_precision",
                                                "flagged_recall")}
            show(f"{name} embeddings, C={C}", scores)
    issues = find_label_issues(ws, gen2, method="in-sample", save=False)
    out["in_sample_softmax_gen2"] = ranking_scores(issues, flipped, new_images)
    show("in-sample: gen2's own softmax", out["in_sample_softmax_gen2"])
    # The linear head in-sample (fitted and scored on the same images), for the same contrast.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    lab = emb_own.labelled()
    head = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
    head.fit(lab.features, lab.rows["label"])
    out["in_sample_linear_head_own"] = ranking_scores(
        label_issue_table(lab.rows, head.predict_proba(lab.features), list(head.classes_)), flipped, new_images)
    show("in-sample linear head, own emb.", out["in_sample_linear_head_own"])

    duplicates = {}
    for threshold in (0.9, 0.95, 0.98):
        pairs = cross_class_duplicates(emb_own, threshold=threshold)
        with_flip = pairs["path_a"].isin(flipped) | pairs["path_b"].isin(flipped)
        duplicates[str(threshold)] = {"pairs": int(len(pairs)), "with_a_flipped_image": int(with_flip.sum()),
                                      "same_duplicate_group": int(pairs["same_group"].sum()),
                                      "flipped_images_in_a_pair": len(flipped & (set(pairs["path_a"])
                                                                                  | set(pairs["path_b"])))}
    out["cross_class_duplicates"] = duplicates
    outliers = class_outliers(emb_own)
    flagged = outliers[outliers["is_outlier"]]
    out["outliers"] = {"flagged": int(len(flagged)), "flipped_among_them": int(flagged["path"].isin(flipped).sum()),
                       "between_class_distance": outliers.attrs["between_class_distance"]}
    print(f"  cross-class duplicates: {duplicates}\n  outliers: {out['outliers']}", flush=True)
    if args.kfold:
        issues, out["kfold_train_s"] = timed(find_label_issues, ws, gen2, method="kfold-train", save=False,
                                             max_epochs=args.epochs, patience=args.patience)
        out["kfold_train"] = ranking_scores(issues, flipped, new_images)
        show("kfold-train (5 trainings)", out["kfold_train"])
    out["gen2_run_dir"] = str(gen2.path)
    return out


def run_scale(tmp: Path, args, model_run_dir: Path | None) -> dict:
    out: dict = {}
    n = args.scale_n
    ws, flipped = big_digits_library(tmp / "big", n, share=args.share, seed=args.seed + 1)
    _, out["scan_first_s"] = timed(Library(ws).scan)
    if model_run_dir is not None:
        import shutil

        shutil.copytree(model_run_dir, ws.runs / model_run_dir.name)
        from imgcls.cleaning import class_outliers, cross_class_duplicates

        run = model_run_dir.name
        _, out["embed_first_s"] = timed(library_embeddings, ws, run)
        # The claim: the whole scan again (library scan, cached embeddings, K-fold head, cleanlab,
        # noise table written), then the duplicates and outliers from the same embeddings.
        issues, out["rank_from_cached_embeddings_s"] = timed(find_label_issues, ws, run)
        emb, out["load_cached_embeddings_s"] = timed(library_embeddings, ws, run)
        _, out["cross_class_duplicates_s"] = timed(cross_class_duplicates, emb)
        _, out["class_outliers_s"] = timed(class_outliers, emb)
        out["n_images"] = int(len(issues))
        out["under_a_minute"] = out["rank_from_cached_embeddings_s"] < 60
        out["ranking"] = ranking_scores(issues, flipped)
        print(f"scale: {n} images: scan {out['scan_first_s']} s, embed {out['embed_first_s']} s, "
              f"rank from cache {out['rank_from_cached_embeddings_s']} s "
              f"(precision@{len(flipped)} {out['ranking']['precision_at_n_flipped']:.3f}), duplicates "
              f"{out['cross_class_duplicates_s']} s, outliers {out['class_outliers_s']} s", flush=True)
    # The ranking alone on Inception-v4-wide features (10 classes, clustered, 5% flipped).
    rng = np.random.default_rng(args.seed)
    centres = rng.normal(0, 1, (10, 1536)).astype(np.float32)
    true = rng.integers(0, 10, n)
    feats = np.maximum(centres[true] + rng.normal(0, 2.0, (n, 1536)).astype(np.float32), 0)
    given, flipped_idx = flip_labels(true, args.share, rng)
    rows = pd.DataFrame({"path": [f"x{i}" for i in range(n)], "label": [f"c{g}" for g in given]})
    (issues, _), out["rank_1536_dims_s"] = timed(rank_label_issues, Embeddings(rows, feats))
    out["rank_1536_dims_precision"] = ranking_scores(issues, {f"x{i}" for i in flipped_idx})[
        "precision_at_n_flipped"]
    print(f"scale: ranking alone, {n} x 1536 features: {out['rank_1536_dims_s']} s", flush=True)
    return out


def run_zoo(tmp: Path, args) -> dict:
    from imgcls.sample import build_sample
    from imgcls.training import train

    ws = build_sample(tmp / "zoo", pool_size=100)
    lib = Library(ws)
    cat = lib.scan()
    classes = lib.classes()
    rng = np.random.default_rng(args.seed)
    cand = cat[cat["label"].isin(classes) & cat["readable"] & ~cat["benchmark"]]
    pick = cand.iloc[rng.choice(len(cand), args.zoo_flips, replace=False)]
    flipped = set()
    for row in pick.itertuples():
        other = rng.choice([c for c in classes if c != row.label])
        dst = ws.library / other / f"flipped-{Path(row.path).name}"
        os.rename(row.path, dst)
        flipped.add(str(dst))
    run, seconds = timed(train, ws, max_epochs=args.epochs, patience=args.patience, seed=0, verbose=0)
    out = {"n_flipped": len(flipped), "run_id": run.run_id, "train_s": seconds,
           "test_accuracy": run.metrics.get("test", {}).get("accuracy"), "classes": run.classes}
    issues = find_label_issues(ws, run, save=False)
    out["own_embeddings"] = ranking_scores(issues, flipped)
    show("zoo: own embeddings (gen1)", out["own_embeddings"])
    out["in_sample"] = ranking_scores(find_label_issues(ws, run, method="in-sample", save=False), flipped)
    show("zoo: in-sample softmax", out["in_sample"])
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few epochs, 2,000-image scale test, no zoo")
    parser.add_argument("--epochs", type=int, default=None, help="max epochs per training (default 60)")
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--share", type=float, default=0.05, help="share of labels flipped")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale-n", type=int, default=None, help="images of the scale test (default 10000)")
    parser.add_argument("--zoo-flips", type=int, default=30)
    parser.add_argument("--kfold", action="store_true", help="also K full trainings (slow)")
    parser.add_argument("--skip-zoo", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON")
    args = parser.parse_args(argv)
    args.epochs = args.epochs or (4 if args.quick else 60)
    args.scale_n = args.scale_n or (2000 if args.quick else 10_000)
    bench = start_benchmark("label_issues", argv)
    out_path = args.out or (None if args.quick else RESULT)
    result: dict = {
        "claim": __doc__.split("\n\n")[0].replace("\n", " "),
        "targets": {"digits_precision_at_n_flipped": 0.9, "anchor_about": 0.86, "rank_10000_s": 60},
        "machine": machine_info(load_avg_start=load_average()),
        "quick": bool(args.quick),
        "settings": {"epochs": args.epochs, "patience": args.patience, "share": args.share, "seed": args.seed,
                     "folds": 5, "C": 0.01, "score_method": "self_confidence", "filter_by": "prune_by_noise_rate"},
    }
    with tempfile.TemporaryDirectory(prefix="bench_label_issues_") as tmpdir:
        tmp = Path(tmpdir)
        result["digits"] = run_digits(tmp, args)
        d = result["digits"]
        result["digits_target_met"] = d["default_own_embeddings"]["precision_at_n_flipped"] >= 0.9
        result["beats_anchor"] = (d["default_own_embeddings"]["precision_at_n_flipped"]
                                  > d["anchor_raw_pixels"]["precision_at_n_flipped"])
        if not args.skip_scale:
            result["scale"] = run_scale(tmp, args, Path(d.pop("gen2_run_dir")))
        if not (args.skip_zoo or args.quick):
            result["zoo"] = run_zoo(tmp, args)
    result["machine"]["load_avg_end"] = load_average()
    if out_path is not None:
        write_result(result, out_path, bench, default=str)
        print(f"wrote {out_path}")
    return result


if __name__ == "__main__":
    main()
