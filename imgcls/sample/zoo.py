"""The embedded zoo sample: a workspace built from the animal-mnist silhouettes.

``build_sample`` writes a workspace that looks like a real project at the start
of the write-up's story:

* most classes comfortably over the cutoff of 40 (bear, bird, cat, cow, dog,
  horse, elephant);
* two just under it: sheep (38) and giraffe (36), the throw-away run's targets;
* one class only in ``unknown/`` so far: zebra (good images nobody named yet);
* one class made of staged images: every library elephant is a studio shot
  (dark silhouette on a bright backdrop) while real elephants look like the
  other animals, and is flagged ``staged``;
* a few exact and near duplicates, a few sideways images flagged as needing a
  90-degree turn, one truncated file;
* the fixed benchmark set, chosen at build time with the same floor as a first
  training (:func:`imgcls.library.choose_benchmark`: 10% of each class, at
  least 10 images where the class allows);
* an ``unlabelled/`` pool of a few thousand images in nested batch folders
  (with two bad files), whose true labels are kept in
  ``unlabelled_truth.csv`` (with each file's content hash) for scoring only
  (:func:`imgcls.sample.attach_truth` joins them to any results table).

The silhouettes come from :mod:`imgcls.sample.animal_mnist`; each is drawn
as a small photo by :func:`render_silhouette`.

This module never imports TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from imgcls.core import Workspace, check_int, file_hash, iter_image_files, open_workspace
from imgcls.sample.animal_mnist import ZOO_CLASSES, load_animal_mnist
from imgcls.sample.truth import sample_truth

__all__ = ["SAMPLE_COUNTS", "render_silhouette", "build_sample", "simulate_labelling"]

#: Library images per class at the start of the story.
SAMPLE_COUNTS = {
    "bear": 90, "bird": 80, "cat": 75, "cow": 70, "dog": 85, "horse": 65,
    "elephant": 55,  # all staged
    "sheep": 38, "giraffe": 36,  # just under the cutoff
}
#: Images of the unnamed class waiting in library/unknown/.
UNKNOWN_COUNT = 24
STAGED_CLASS = "elephant"
UNKNOWN_TRUE_CLASS = "zebra"


def render_silhouette(sil: np.ndarray, size: int, rng: np.random.Generator, *,
                      staged: bool = False) -> np.ndarray:
    """A silhouette as an RGB picture: tinted animal on a textured outdoor
    background, or (staged) a dark cut-out on a bright studio backdrop.

    Args:
        sil: A greyscale silhouette (``uint8``, 255 = animal), any square size.
        size: Side of the picture made, in pixels.
        rng: Draws the colours, horizon and noise.
        staged: Draw a studio shot instead of an outdoor one.

    Returns:
        A ``uint8`` array of shape ``(size, size, 3)``.
    """
    mask = np.asarray(Image.fromarray(sil).resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
    mask = mask[..., None]
    yy = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    if staged:
        top = np.array([245, 245, 240], np.float32)
        bottom = np.array([200, 205, 215], np.float32)
        bg = top * (1 - yy) + bottom * yy + np.zeros((size, size, 3), np.float32)
        fg = np.full(3, rng.uniform(15, 45), np.float32)
        noise = 2.0
    else:
        sky = rng.uniform([60, 90, 120], [130, 170, 220]).astype(np.float32)
        ground = rng.uniform([40, 70, 20], [110, 140, 70]).astype(np.float32)
        horizon = rng.uniform(0.45, 0.75)
        bg = np.where(yy < horizon, sky, ground) + np.zeros((size, size, 3), np.float32)
        fg = rng.uniform([140, 110, 80], [250, 235, 210]).astype(np.float32)
        noise = 12.0
    img = bg * (1 - mask) + fg * mask + rng.normal(0, noise, (size, size, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _save(pixels: np.ndarray, path: Path, rng: np.random.Generator, jpeg_share: float = 0.2) -> Path:
    if rng.random() < jpeg_share:
        path = path.with_suffix(".jpg")
        Image.fromarray(pixels).save(path, quality=92)
    else:
        path = path.with_suffix(".png")
        Image.fromarray(pixels).save(path)
    return path


def build_sample(
    workspace: Workspace | str | os.PathLike,
    *,
    image_size: int = 64,
    pool_size: int = 3000,
    seed: int = 0,
    overwrite: bool = False,
) -> Workspace:
    """Build the zoo sample workspace at ``workspace``.

    Args:
        workspace: The workspace folder to create (or a
            :class:`~imgcls.core.Workspace`). It must not hold images already unless
            ``overwrite`` is set (even then nothing is deleted: an existing
            sample is reused as it is).
        image_size: Side of the square images written (the demo models use 64).
        pool_size: Images in ``unlabelled/`` (plus two bad files).
        seed: Everything random follows from it.
        overwrite: Return an existing sample workspace instead of failing.

    Returns:
        The :class:`~imgcls.core.Workspace`.
    """
    image_size = check_int(image_size, "image_size", 16, high=512)
    pool_size = check_int(pool_size, "pool_size", 0)
    ws = open_workspace(workspace)
    marker = ws.root / ".imgcls-sample"
    if next(iter_image_files(ws.library), None) or next(iter_image_files(ws.unlabelled), None):
        if overwrite and marker.exists():
            return ws
        raise ValueError(
            f"{str(ws.root)!r} already holds images. Pick an empty folder for the sample, "
            "or pass overwrite=True to reuse an existing sample workspace as it is."
        )
    from imgcls.library import Library, choose_benchmark

    rng = np.random.default_rng(seed)
    images, labels = load_animal_mnist()
    order = rng.permutation(len(labels))
    by_class = {c: [i for i in order if labels[i] == k] for k, c in enumerate(ZOO_CLASSES)}
    used: dict[str, int] = {}

    def take(cls: str, n: int) -> list[int]:
        start = used.get(cls, 0)
        used[cls] = start + n
        return by_class[cls][start:start + n]

    staged_files: list[Path] = []
    lib_files: dict[str, list[Path]] = {}
    for cls, n in SAMPLE_COUNTS.items():
        folder = ws.library / cls
        folder.mkdir(parents=True, exist_ok=True)
        staged = cls == STAGED_CLASS
        for j, i in enumerate(take(cls, n)):
            p = _save(render_silhouette(images[i], image_size, rng, staged=staged), folder / f"{cls}_{i:05d}", rng)
            lib_files.setdefault(cls, []).append(p)
            if staged:
                staged_files.append(p)
    for i in take(UNKNOWN_TRUE_CLASS, UNKNOWN_COUNT):
        _save(render_silhouette(images[i], image_size, rng), ws.unknown / f"img_{i:05d}", rng)

    # Curation problems a real library has.
    dup_src = [lib_files["cat"][0], lib_files["dog"][1], lib_files["bear"][2]]
    for p in dup_src:  # exact duplicates under another name
        (p.parent / f"copy_of_{p.name}").write_bytes(p.read_bytes())
    (ws.library / "cow" / f"also_{lib_files['horse'][3].name}").write_bytes(lib_files["horse"][3].read_bytes())
    for p in [lib_files["bird"][0], lib_files["horse"][1]]:  # near duplicates: re-encoded, slightly brighter
        px = np.asarray(Image.open(p).convert("RGB"), dtype=np.int16)
        Image.fromarray(np.clip(px + 6, 0, 255).astype(np.uint8)).save(p.parent / f"{p.stem}_edit.jpg", quality=95)
    turned = []
    for p in [lib_files["dog"][5], lib_files["cow"][5], lib_files["bird"][5]]:  # stored sideways
        px = np.asarray(Image.open(p).convert("RGB"))
        Image.fromarray(np.rot90(px, k=-1)).save(p)  # turned clockwise: needs one turn back (CCW)
        turned.append(p)
    bad = lib_files["cat"][7]
    data = bad.read_bytes()
    bad.with_name(f"{bad.stem}_truncated{bad.suffix}").write_bytes(data[: len(data) // 2])

    # The unlabelled pool: everything not used yet, in nested batch folders.
    taken = {i for cls, n in used.items() for i in by_class[cls][:n]}
    pool = [i for i in order if i not in taken][:pool_size]
    truth = []
    for j, i in enumerate(pool):
        folder = ws.unlabelled / f"batch_{j // 500 + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        p = _save(render_silhouette(images[i], image_size, rng), folder / f"upload_{i:05d}", rng)
        truth.append((p.relative_to(ws.unlabelled).as_posix(), ZOO_CLASSES[labels[i]]))
    if pool_size:
        junk = ws.unlabelled / "batch_01"
        (junk / "not_an_image.jpg").write_text("<html><body>404 Not Found</body></html>")
        first = ws.unlabelled / truth[0][0]
        (junk / f"broken_{first.name}").write_bytes(first.read_bytes()[:60])
        truth += [("batch_01/not_an_image.jpg", ""), (f"batch_01/broken_{first.name}", "")]
    # The content hash travels with the label: it still finds an image that has moved (attach_truth).
    hashes = [file_hash(ws.unlabelled / rel) for rel, _ in truth]
    pd.DataFrame([(r, lab, h) for (r, lab), h in zip(truth, hashes)],
                 columns=["relpath", "label", "hash"]).to_csv(ws.sample_labels_file, index=False)

    lib = Library(ws)
    lib.scan()
    lib.set_flags(staged_files, staged=True)
    lib.set_flags(turned, turns=1)
    choose_benchmark(lib)  # the same floor as a first training: 10% of a class, at least 10 images
    marker.write_text(f"imgcls zoo sample; seed={seed}; image_size={image_size}; data: animal-mnist 0.4 (MIT)\n")
    return ws


def simulate_labelling(
    workspace: Workspace | str | os.PathLike,
    counts: dict[str, int],
    *,
    seed: int = 0,
    at_most: bool = False,
) -> pd.DataFrame:
    """Label pool images by their hidden truth, as a person would, through
    the library's journaled moves (a stand-in for a labelling round).

    Args:
        workspace: The sample workspace.
        counts: Class -> number of pool images to move into ``library/<class>/``.
        seed: Which images.
        at_most: Take what the pool still has when it holds fewer images of
            a class than asked for (a later round, a small pool) instead of failing.

    Returns:
        The moves made [path, label, new_path].

    Raises:
        ValueError: The pool has fewer images of a class than asked for (and not ``at_most``).
    """
    from imgcls.library import Library

    truth = sample_truth(workspace)
    truth = truth[truth["label"] != ""]
    truth = truth[[os.path.exists(p) for p in truth["path"]]]
    rng = np.random.default_rng(seed)
    lib = Library(workspace)
    rows = []
    for cls, n in counts.items():
        avail = truth[truth["label"] == cls]
        if at_most:
            n = min(n, len(avail))
        if len(avail) < n:
            raise ValueError(f"Only {len(avail)} {cls!r} images left in the pool; asked for {n}.")
        pick = avail.iloc[rng.choice(len(avail), size=n, replace=False)]
        for p in pick["path"]:
            rows.append({"path": p, "label": cls, "new_path": str(lib.add(p, cls, move=True)[0])})
    return pd.DataFrame(rows, columns=["path", "label", "new_path"])

