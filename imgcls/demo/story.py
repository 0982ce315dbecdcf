"""The main job on the embedded zoo sample (what ``make demo`` runs).

One call walks the write-up's life cycle end to end on the zoo sample:

1. build (or reuse) the sample workspace and scan its library;
2. train generation 1 from scratch on the classes over the cutoff, promote it
   (the sample's benchmark set was fixed when it was built, before any training);
3. a labelling round grows the library (zebra becomes a class, sheep and
   giraffe make the cutoff); generation 2 by head swap, through the deploy
   gate: the paired statistical checks of :func:`imgcls.evaluation.promote`
   with their defaults (no rule loosened for the demo), every check printed;
4. bulk-identify the unlabelled pool and score it against the hidden labels
   (joined by content: :func:`imgcls.sample.attach_truth`);
5. simulated serving traffic across the model versions that were promoted
   (a refused generation never serves), with manual evaluations;
6. export the management deck into ``reports/``.

It is the top of the package (layer 7): every step is a public function.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["run_demo"]

LABELLING_ROUND = {"zebra": 60, "sheep": 20, "giraffe": 20}


def _say(msg: str) -> None:
    print(f"[imgcls demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _say_gate(result) -> None:
    """The gate's decision with its whole check table and warnings."""
    verdict = "accepted" if result.accepted else "refused"
    _say(f"deploy gate: {result.run_id} {verdict}\n" + result.explain())


def run_demo(
    root: str | os.PathLike = "demo-workspace",
    *,
    model: str = "mini_inception",
    image_size: int = 64,
    max_epochs: int = 40,
    patience: int = 6,
    pool_size: int = 3000,
    traffic_requests: int = 2000,
    weeks: int = 8,
    seed: int = 0,
    verbose: int = 1,
) -> dict:
    """Run the whole life cycle on the zoo sample at ``root``.

    Re-running it reuses what is there: the sample is not rebuilt, trained
    generations are not retrained.

    Returns:
        A dict of what was produced: run ids, the gate's results (``gates``:
        one :meth:`PromotionResult.to_dict` per promotion made in this call),
        bulk results path, precision table, served runs, deck files.
    """
    from imgcls.bulk import identify, precision_at_thresholds
    from imgcls.demo.traffic import simulate_traffic
    from imgcls.evaluation import promote
    from imgcls.library import Library
    from imgcls.reports import export_deck
    from imgcls.runs import list_runs, load_run, promoted_run_ids
    from imgcls.sample import attach_truth, build_sample, simulate_labelling
    from imgcls.training import next_generation, train
    from imgcls.translog import TransactionLog

    t0 = time.perf_counter()
    gates: list[dict] = []
    ws = build_sample(root, image_size=image_size, pool_size=pool_size, seed=seed, overwrite=True)
    lib = Library(ws)
    lib.scan()
    _say(f"workspace {ws.root}: {len(lib.catalog)} library images, classes over the cutoff: {', '.join(lib.classes())}")

    runs = list_runs(ws)
    done = runs[~runs["throwaway"]] if len(runs) else runs
    if len(done) >= 1:
        gen1 = load_run(done["run_id"].iloc[0], workspace=ws)
        _say(f"generation 1 (from scratch) exists: {gen1.run_id}")
    else:
        _say(f"training generation 1 from scratch ({model}, {image_size}px, until plateau)")
        gen1 = train(ws, model=model, image_size=image_size, max_epochs=max_epochs, patience=patience,
                     seed=seed, verbose=verbose)
        first = promote(ws, gen1, reason="demo: first production model")
        _say_gate(first)
        gates.append(first.to_dict())
    _say(f"generation 1 (from scratch): test accuracy {gen1.metrics.get('test', {}).get('accuracy', float('nan')):.3f}")

    if len(done) >= 2:
        gen2 = load_run(done["run_id"].iloc[1], workspace=ws)
        _say(f"generation 2 (head swap) exists: {gen2.run_id}")
    else:
        if "zebra" not in lib.classes():
            simulate_labelling(ws, LABELLING_ROUND, seed=seed, at_most=True)  # a small pool gives what it has
            _say(f"labelling round: {LABELLING_ROUND}")
        _say("training generation 2 by head swap from generation 1")
        gen2 = next_generation(ws, gen1, seed=seed, max_epochs=max_epochs, patience=patience, verbose=verbose)
        result = promote(ws, gen2, reason="demo: generation 2 (head swap)")
        _say_gate(result)
        gates.append(result.to_dict())
    _say(f"generation 2 (head swap): test accuracy {gen2.metrics.get('test', {}).get('accuracy', float('nan')):.3f}")

    promoted = set(promoted_run_ids(ws))
    served = [r for r in (gen1, gen2) if r.run_id in promoted]
    best = gen2 if gen2.run_id in promoted else gen1
    _say(f"bulk identification of the unlabelled pool with {best.run_id}")
    results = attach_truth(identify(ws, run=best, progress=verbose > 0), ws)  # hidden labels, joined by content
    precision = precision_at_thresholds(results)
    _say("precision of accepted predictions against the hidden labels:\n" + precision.to_string(index=False))

    with TransactionLog(ws) as log:
        simulated = int(log.transactions(columns=["simulated"])["simulated"].sum()) if log.count() else 0
    if not simulated and served:
        _say(f"simulated serving traffic: {traffic_requests} requests over {weeks} weeks, "
             f"{len(served)} promoted model version(s)")
        simulate_traffic(ws, runs=served, weeks=weeks, requests=traffic_requests, seed=seed)
    deck = export_deck(ws)
    out_dir = Path(deck["path"].iloc[0]).parent if len(deck) and "path" in deck else ws.reports
    _say(f"management deck: {len(deck)} files in {out_dir}")
    _say(f"done in {time.perf_counter() - t0:.0f} s")
    return {
        "workspace": str(ws.root),
        "scratch_run": gen1.run_id,
        "head_swap_run": gen2.run_id,
        "gates": gates,
        "served_runs": [r.run_id for r in served],
        "bulk_results": results.attrs.get("results_path"),
        "precision": precision,
        "deck_dir": str(out_dir),
        "deck_files": deck,
    }
