"""Where a workspace stands in the life cycle, so a notebook can say what it will do.

A notebook may open a fresh sample (nothing trained yet) or the workspace
``imgcls demo`` left behind (generations trained, one in production, the
benchmark set fixed, the labelling round done). :func:`workspace_state`
reads it once, from the library and the runs store, and
:meth:`WorkspaceState.describe` says it in sentences; the notebooks branch on
its fields instead of re-deriving them in cells.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from imgcls.core.workspace import Workspace, as_workspace
from imgcls.library import Library
from imgcls.runs import lineage, list_runs, load_run, production_run_id

__all__ = ["WorkspaceState", "workspace_state"]


@dataclass(frozen=True)
class WorkspaceState:
    """A workspace's place in the life cycle (see :func:`workspace_state`).

    Attributes:
        root: The workspace folder.
        is_sample: It is the zoo sample (it has hidden pool labels).
        cutoff: The cutoff the counts were read against.
        classes: Classes at the cutoff now (what a regular run would train on).
        runs: Finished runs (throw-away ones included).
        kept_runs: Finished runs that are not throw-away, oldest first.
        throwaway_runs: Throw-away runs, oldest first.
        production: The production run's id, or None.
        production_generation: Its generation as the runs number it (1 = trained from
            scratch, each head swap one more: the ``g<N>`` of a run id), or None.
        production_classes: The classes production knows (empty without one).
        new_classes: Classes at the cutoff that production does not know yet.
        benchmark_images: Images in the fixed benchmark set (0: not fixed yet).
    """

    root: str
    is_sample: bool
    cutoff: int
    classes: list[str]
    runs: int
    kept_runs: list[str]
    throwaway_runs: list[str]
    production: str | None
    production_generation: int | None
    production_classes: list[str] = field(default_factory=list)
    new_classes: list[str] = field(default_factory=list)
    benchmark_images: int = 0

    @property
    def has_production(self) -> bool:
        """A run is in production."""
        return self.production is not None

    @property
    def benchmark_fixed(self) -> bool:
        """The benchmark set exists (it was fixed before the first training)."""
        return self.benchmark_images > 0

    @property
    def next_generation(self) -> int:
        """The generation a head swap from production would be (1, the first, without production)."""
        return 1 if self.production_generation is None else self.production_generation + 1

    def describe(self) -> str:
        """The state in a few plain sentences (for a notebook's first output)."""
        lines = [f"Workspace {self.root}" + (" (the zoo sample)" if self.is_sample else "") + ":"]
        lines.append(f"- {len(self.classes)} classes at the cutoff of {self.cutoff}: {', '.join(self.classes) or 'none'}")
        if self.benchmark_fixed:
            lines.append(f"- benchmark set fixed: {self.benchmark_images} images, never trained on")
        else:
            lines.append("- no benchmark set yet: the first training fixes it")
        lines.append(f"- {self.runs} trained run{'s' if self.runs != 1 else ''}: {len(self.kept_runs)} kept, "
                     f"{len(self.throwaway_runs)} throw-away")
        if self.has_production:
            lines.append(f"- production: {self.production} (generation {self.production_generation}, "
                         f"{len(self.production_classes)} classes)")
            if self.new_classes:
                lines.append(f"- classes production does not know yet: {', '.join(self.new_classes)}")
        else:
            lines.append("- no production model yet: the first run the gate sees becomes production")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython shows the sentences
        printer.text(self.describe())


def workspace_state(
    workspace: Workspace | str | os.PathLike,
    *,
    cutoff: int | None = None,
) -> WorkspaceState:
    """Read where ``workspace`` stands: production, generations, benchmark set, classes.

    Args:
        workspace: The workspace.
        cutoff: Images a class needs to train (default the workspace's cutoff).

    Returns:
        A :class:`WorkspaceState`; ``print(state)`` says it in sentences.
    """
    ws = as_workspace(workspace)
    cutoff = ws.cutoff if cutoff is None else cutoff
    lib = Library(ws)
    catalog = lib.scan()
    classes = list(lib.classes(cutoff=cutoff))
    bench = catalog[catalog["benchmark"].astype(bool)] if "benchmark" in catalog else catalog.iloc[0:0]
    runs = list_runs(ws)
    throw = runs["throwaway"].astype(bool) if len(runs) else runs.get("throwaway")
    kept = list(runs.loc[~throw, "run_id"]) if len(runs) else []
    thrown = list(runs.loc[throw, "run_id"]) if len(runs) else []
    prod_id = production_run_id(ws)
    generation, prod_classes = None, []
    if prod_id:
        prod = load_run(prod_id, workspace=ws)
        generation = int(prod.config.get("generation") or len(lineage(prod)))
        prod_classes = list(prod.classes)
    return WorkspaceState(
        root=os.path.abspath(ws.root),
        is_sample=ws.sample_labels_file.exists(),
        cutoff=int(cutoff),
        classes=classes,
        runs=len(runs),
        kept_runs=kept,
        throwaway_runs=thrown,
        production=prod_id or None,
        production_generation=generation,
        production_classes=prod_classes,
        new_classes=[c for c in classes if prod_id and c not in prod_classes],
        benchmark_images=int(len(bench)),
    )
