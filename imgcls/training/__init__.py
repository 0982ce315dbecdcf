"""Training until plateau, its callbacks and metrics, and the head-swap next generation (layer 4)."""

from imgcls.core.quiet import start_tensorflow

start_tensorflow()  # before any TensorFlow import below: loads it without its start-up lines on stderr

from imgcls.training.callbacks import print_progress
from imgcls.training.choose import choose_run
from imgcls.training.data import prepare_training_data
from imgcls.training.fit import fit_epochs
from imgcls.training.headswap import (
    HEAD_LAYER,
    class_changes,
    next_generation,
    split_changes,
    swap_head,
)
from imgcls.training.metrics import labelled_scores, model_metrics
from imgcls.training.options import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MIN_DELTA,
    DEFAULT_PATIENCE,
    DEFAULT_TOP_K,
    check_image_size,
    check_verbose,
    compile_model,
)
from imgcls.training.plots import plot_history
from imgcls.training.state import WorkspaceState, workspace_state
from imgcls.training.train import train

__all__ = [
    "DEFAULT_MAX_EPOCHS",
    "DEFAULT_PATIENCE",
    "DEFAULT_MIN_DELTA",
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_TOP_K",
    "train",
    "choose_run",
    "WorkspaceState",
    "workspace_state",
    "plot_history",
    "model_metrics",
    "labelled_scores",
    "prepare_training_data",
    "compile_model",
    "fit_epochs",
    "check_verbose",
    "check_image_size",
    "print_progress",
    "HEAD_LAYER",
    "swap_head",
    "class_changes",
    "split_changes",
    "next_generation",
]
