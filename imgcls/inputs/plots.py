"""Figures of the inputs: what the training augmentation does to one image.

matplotlib is imported only when a figure is made; the figure has the
package's one slide style (:mod:`imgcls.core.slides`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from imgcls.core.checks import check_int
from imgcls.core.slides import new_figure, set_footer, set_headline
from imgcls.inputs.augment import _steps, make_augmentation, routed_augmentation
from imgcls.inputs.subject import _as_image, is_small_subject

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["preview_augmentation"]


def preview_augmentation(
    image: Any,
    *,
    n: int = 8,
    seed: int = 0,
    augmentation: Any = None,
    columns: int = 3,
    small_subject: bool | None = None,
) -> "Figure":
    """Draw one image and ``n`` augmented versions of it in a grid.

    The first panel is the original (titled ``"original"``, with a note when
    the image counts as a small subject); the others are titled
    ``"augmented 1"``...``"augmented n"``. Small subjects get zoom-in-only
    zoom, exactly as in the training pipeline.

    Args:
        image: RGB array ``(H, W, 3)`` in 0..255, or a path to an image file.
        n: Number of augmented versions, >= 1.
        seed: Seed of the default augmentation (ignored if ``augmentation`` is given).
        augmentation: The augmentation to preview; default
            ``make_augmentation(seed=seed)``.
        columns: Panels per row.
        small_subject: Force the small-subject routing on/off; default
            :func:`imgcls.inputs.is_small_subject` of the image.

    Returns:
        A ``matplotlib.figure.Figure`` (not registered with pyplot; a notebook
        shows it when it is the cell's value, ``fig.savefig`` writes it).
    """
    check_int(n, "n", 1, " (number of augmented versions)")
    check_int(columns, "columns")
    arr = _as_image(image)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if small_subject is None:
        small_subject = is_small_subject(arr)
    if augmentation is None:
        augmentation = make_augmentation(seed=seed)
    batch = np.repeat(arr[None].astype(np.float32), n, axis=0)
    out = routed_augmentation(augmentation)(
        batch, np.full((n,), bool(small_subject)), training=True
    )
    out = np.asarray(out)

    panels = [arr.astype(np.float32)] + [out[i] for i in range(n)]
    titles = ["original" + ("\n(small subject: zoom in only)" if small_subject else "")]
    titles += [f"augmented {i + 1}" for i in range(n)]
    columns = min(int(columns), len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = new_figure(nrows=rows, ncols=columns)
    axes = np.atleast_1d(axes).ravel()  # at least two panels: never a single Axes
    for ax in axes:
        ax.axis("off")
    for ax, panel, title in zip(axes, panels, titles):
        ax.imshow(np.clip(panel, 0, 255).astype(np.uint8))
        ax.set_title(title, fontsize=14)
    steps = [getattr(step, "name", type(step).__name__) for step in _steps(augmentation)]
    if small_subject:
        finding = f"A small subject is only ever zoomed in: {n} random training versions of one image"
    else:
        finding = f"Training sees each image slightly changed: {n} random versions of one image"
    subtitle = (f"n = {n} augmented versions of one {arr.shape[0]}x{arr.shape[1]} image; "
                f"augmentation steps: {', '.join(steps) or 'none'}; "
                + ("small subject: zoom in only" if small_subject else "full zoom range"))
    set_headline(fig, finding)
    set_footer(fig, subtitle)
    return fig
