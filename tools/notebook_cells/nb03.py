"""Notebook 03: the head-swap fine-tuning loop and the deploy gate."""

from .common import OPEN_WS, SETUP, code, md

NAME = "03_finetune_loop.ipynb"

CELLS = [
    md("""
# 03 · The head-swap fine-tuning loop

The write-up's central claim: instead of training from scratch every time, take the last
trained model, **pop its output layer, add a new randomly initialised one** sized for the new
class count, and keep training *all* weights. Generation after generation this plateaus in far
fewer epochs (about 20 instead of 120) and at higher accuracy (99 % instead of 93 %).

Here: generation 0 (the latest run, or a new one trained from scratch), then the library grows
(a labelling round adds images and a new class, zebra), and generation 1 is trained twice on
exactly the same data and splits: by **head swap** from generation 0 and **from scratch**. Then
the evaluation plots and the **deploy gate**: a promotion accepted and one refused.
"""),
    code("""
WORKSPACE = ""                      # your project folder; empty: the zoo sample
SAMPLE_DIR = "../demo-workspace"
SAMPLE_IMAGE_SIZE = 64
SAMPLE_POOL_SIZE = 3000
CUTOFF = 40
MODEL = "mini_inception"            # full size: "inception_v4"
IMAGE_SIZE = 64                     # full size: 299
MAX_EPOCHS = 60                     # full size: 150
PATIENCE = 6                        # full size: 10
SEED = 0
LABELLING = {"zebra": 60, "sheep": 20, "giraffe": 20}   # the zoo sample's labelling round
""", parameters=True),
    code(SETUP),
    code(OPEN_WS),
    md("## Generation 0\nThe newest run that is not a throw-away, or a new one trained from scratch."),
    code("""
from imgcls.runs import list_runs, load_run
from imgcls.training import train
runs = list_runs(ws)
keepers = runs[~runs["throwaway"]] if len(runs) else runs
gen0 = (load_run(keepers["run_id"].iloc[-1], ws) if len(keepers)
        else train(ws, model=MODEL, image_size=IMAGE_SIZE, max_epochs=MAX_EPOCHS, patience=PATIENCE, seed=SEED, verbose=0))
print(gen0.run_id, gen0.classes)
"""),
    md("## The first promotion\nWith no production model yet, the gate accepts any run that is not a throw-away."),
    code("""
from imgcls.evaluation import promote, promotion_log
first = promote(gen0, ws, reason="first production model")
first
"""),
    md("## The library grows\nA labelling round (on the sample: pool images with their hidden labels, moved through "
       "the library's journaled moves). Zebra becomes a class; sheep and giraffe make the cutoff."),
    code("""
from imgcls.library import Library
from imgcls.sample import simulate_labelling
if ws.sample_labels_file.exists() and "zebra" not in Library(ws).classes():  # the zoo sample only
    simulate_labelling(ws, LABELLING, seed=SEED)
lib = Library(ws)
lib.scan()
lib.counts()
"""),
    md("## Generation 1, twice: head swap vs from scratch\nSame data, same splits, same seed and stopping rule. "
       "The from-scratch arm is a control, trained as a throw-away so that it can never be deployed."),
    code("""
from imgcls.finetune import class_changes, next_generation, plot_learning_curves
display(class_changes(gen0, ws))
gen1 = next_generation(gen0, ws, seed=SEED, max_epochs=MAX_EPOCHS, patience=PATIENCE, verbose=0)
scratch = train(ws, model=gen0.model_name, image_size=gen0.image_size, max_epochs=MAX_EPOCHS, patience=PATIENCE,
                seed=SEED, throwaway=True, verbose=0)
pd.DataFrame([{"arm": name, "run": r.run_id, "epochs": r.metrics["training"]["epochs_trained"],
               "epochs to plateau": r.metrics["training"]["epochs_to_plateau"],
               "best val accuracy": r.metrics["training"]["best_val_accuracy"],
               "test accuracy": r.metrics["test"]["accuracy"],
               "benchmark accuracy": r.metrics["benchmark"]["accuracy"],
               "wall time (s)": r.metrics["training"]["wall_time_s"]}
              for name, r in [("head swap", gen1), ("from scratch", scratch)]])
"""),
    code("""
plot_learning_curves({"head swap (gen 1)": gen1, "from scratch (gen 1)": scratch}, workspace=ws)
"""),
    md("## The full experiment\nOver several seeds, as `benchmarks/headswap_vs_scratch.py` runs it (when its results exist)."),
    code("""
from pathlib import Path
from imgcls.finetune import (headswap_speed_table, headswap_verdict, read_headswap_benchmark,
                             summarize_headswap)
bench_file = Path("../benchmarks/results/headswap_vs_scratch.json")
bench = read_headswap_benchmark(bench_file) if bench_file.exists() else None
if bench is not None:
    display(summarize_headswap(bench["runs"]))
    print(headswap_verdict(bench["runs"])["text"])
    display(headswap_speed_table(bench))
    display(plot_learning_curves(bench))
else:
    print("run: python benchmarks/headswap_vs_scratch.py")
"""),
    md("## Evaluating generation 1"),
    code("""
from imgcls.evaluation import (compare_runs, evaluate, plot_calibration, plot_comparison, plot_confused_pairs,
                               plot_confusion, plot_per_class)
result = evaluate(gen1, ws, split="test")
print(f"test accuracy {result['summary']['accuracy']:.1%}")
plot_confusion(result)
"""),
    code("plot_per_class(result)"),
    code("plot_confused_pairs(result)"),
    code("plot_calibration(result)"),
    md("## Side by side on the fixed benchmark set"),
    code("""
comparison = compare_runs([gen0, gen1, scratch], ws)
display(comparison["summary"])
plot_comparison(comparison)
"""),
    md("## The deploy gate\nGeneration 1 replaces production only if it is at least as good on the benchmark set "
       "(no class dropping by more than the allowed amount); the throw-away control is always refused."),
    code("""
accepted = promote(gen1, ws, reason="generation 1 (head swap)")
refused = promote(scratch, ws, reason="try the control arm")
display(accepted, refused)
promotion_log(ws)
"""),
]
