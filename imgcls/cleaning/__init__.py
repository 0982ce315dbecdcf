"""Cleaning the library with the model: label issues, cross-class duplicates, outliers (layer 5).

Between generations the labelled library itself is questioned: a
mislabelled image poisons every later generation.

* :mod:`~imgcls.cleaning.embeddings` - :func:`library_embeddings`: the
  ``"avg_pool"`` features of every library image, cached per run;
* :mod:`~imgcls.cleaning.holdout` - out-of-sample probabilities: a K-fold
  linear head on the embeddings (:func:`linear_head_probs`) or K full
  trainings (:func:`kfold_train_probs`), duplicate groups kept in one fold;
* :mod:`~imgcls.cleaning.issues` - :func:`find_label_issues`: cleanlab's
  label-quality ranking, flags and suggested classes;
* :mod:`~imgcls.cleaning.noise` - the per-class noise table, stored in the
  run folder for the (TensorFlow-free) reports;
* :mod:`~imgcls.cleaning.neighbours` - nearest labelled neighbours,
  near-duplicates in different classes, images unlike their class;
* :mod:`~imgcls.cleaning.review` - :func:`review_table`: the ranking as a
  decisions table (empty ``action`` / ``label``) for ``imgcls apply``.

cleanlab is an optional extra: ``pip install 'imgcls[cleaning]'``.

Importing this package loads no TensorFlow (models are loaded on use).

Example:
    >>> from imgcls.cleaning import find_label_issues, library_embeddings, cross_class_duplicates
    >>> emb = library_embeddings(ws, "latest")
    >>> issues = find_label_issues(ws, "latest", embeddings=emb)
    >>> cross_class_duplicates(emb)
"""

import imgcls.core.quiet  # noqa: F401  (before TensorFlow loads: silences its start-up logging)

from imgcls.cleaning.embeddings import (
    EMBEDDING_COLUMNS,
    EMBEDDINGS_DIR,
    FEATURE_LAYER,
    Embeddings,
    embed_images,
    embedding_run,
    library_embeddings,
)
from imgcls.cleaning.holdout import (
    DEFAULT_C,
    DEFAULT_FOLDS,
    group_folds,
    kfold_train_probs,
    linear_head_probs,
)
from imgcls.cleaning.issues import (
    FILTERS,
    ISSUE_COLUMNS,
    METHODS,
    MIN_CLASS_IMAGES,
    SCORE_METHODS,
    find_label_issues,
    label_issue_table,
    rank_label_issues,
)
from imgcls.cleaning.neighbours import (
    DUPLICATE_COLUMNS,
    DUPLICATE_SIMILARITY,
    NEIGHBOUR_COLUMNS,
    NEIGHBOURS,
    OUTLIER_COLUMNS,
    OUTLIER_RATIO,
    class_outliers,
    cross_class_duplicates,
    nearest_neighbours,
    unit_vectors,
)
from imgcls.cleaning.noise import (
    LABEL_ISSUES_FILE,
    LABEL_NOISE_FILE,
    NOISE_COLUMNS,
    noise_table,
    read_label_noise,
    write_label_noise,
)
from imgcls.cleaning.review import REVIEW_COLUMNS, REVIEW_FORMATS, review_table, write_review_table

__all__ = [
    "FEATURE_LAYER",
    "EMBEDDINGS_DIR",
    "EMBEDDING_COLUMNS",
    "Embeddings",
    "embedding_run",
    "embed_images",
    "library_embeddings",
    "DEFAULT_FOLDS",
    "DEFAULT_C",
    "group_folds",
    "linear_head_probs",
    "kfold_train_probs",
    "METHODS",
    "SCORE_METHODS",
    "FILTERS",
    "ISSUE_COLUMNS",
    "MIN_CLASS_IMAGES",
    "label_issue_table",
    "rank_label_issues",
    "find_label_issues",
    "LABEL_NOISE_FILE",
    "LABEL_ISSUES_FILE",
    "NOISE_COLUMNS",
    "noise_table",
    "write_label_noise",
    "read_label_noise",
    "DUPLICATE_SIMILARITY",
    "OUTLIER_RATIO",
    "NEIGHBOURS",
    "DUPLICATE_COLUMNS",
    "OUTLIER_COLUMNS",
    "NEIGHBOUR_COLUMNS",
    "unit_vectors",
    "nearest_neighbours",
    "cross_class_duplicates",
    "class_outliers",
    "REVIEW_COLUMNS",
    "REVIEW_FORMATS",
    "review_table",
    "write_review_table",
]
