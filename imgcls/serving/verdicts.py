"""Recording a person's verdict on a served prediction, under the rules of the log.

:func:`record_verdict` is what :meth:`Predictor.record_verdict
<imgcls.serving.Predictor.record_verdict>` and ``POST /evaluations`` do:

* the transaction must exist (:class:`~imgcls.translog.UnknownTransactionError`,
  HTTP 404) and ids are ints in the range the log holds (else 422);
* ``true_class`` must be one of the classes of the run that served the
  prediction, or be flagged ``new_class=True`` and pass the library's class
  name rules (:func:`imgcls.library.validate_class_name`);
* reviewer and note lengths are bounded
  (:data:`~imgcls.translog.MAX_REVIEWER_CHARS`, :data:`~imgcls.translog.MAX_NOTE_CHARS`);
* the current verdict of a transaction is the last one the log *receives*
  (its own clock, not a client's time); earlier verdicts stay in the history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imgcls.core import check_bool
from imgcls.serving.records import LogWriteError
from imgcls.translog import UnknownTransactionError

if TYPE_CHECKING:  # pragma: no cover
    from imgcls.serving.predictor import Predictor

__all__ = ["check_true_class", "record_verdict"]


def check_true_class(true_class: Any, *, new_class: bool, classes: list[str], run_id: str) -> str | None:
    """``true_class`` checked against the classes of the run that served the prediction.

    Args:
        true_class: The class a reviewer says the image shows (None: unknown).
        new_class: It is flagged as a class the model does not know yet.
        classes: The serving run's classes.
        run_id: The serving run (named in messages).

    Returns:
        The class name (a new one stripped and normalised by the library's rules), or None.

    Raises:
        ValueError: Not one of ``classes`` and not flagged new; flagged new
            but known; or a new name the library refuses.
    """
    if true_class is None:
        if new_class:
            raise ValueError("`new_class` is true but no `true_class` was given; fix: send the new "
                             "class name as true_class, or drop new_class")
        return None
    if not isinstance(true_class, str):
        raise ValueError(f"`true_class` must be a string. Received: {type(true_class).__name__}")
    if not new_class:
        if true_class in classes:
            return true_class
        listed = ", ".join(classes[:30]) + (", ..." if len(classes) > 30 else "")
        raise ValueError(
            f"`true_class` must be one of the {len(classes)} classes of run {run_id} ({listed}). "
            f"Received: true_class={true_class[:100]!r}; fix: pick one of them, or send "
            "new_class=true for a class the model does not know yet")
    from imgcls.library import validate_class_name  # the library's one rule for class names

    name = validate_class_name(true_class)
    if name in classes:
        raise ValueError(
            f"`true_class` {name!r} is already a class of run {run_id}, but new_class=true says "
            "it is new; fix: drop new_class")
    return name


def record_verdict(predictor: "Predictor", transaction_id: int, verdict: str, *, reviewer: str,
                   true_class: str | None = None, new_class: bool = False, note: str | None = None,
                   time: Any = None, simulated: bool = False) -> int:
    """Record a verdict through ``predictor``'s log (see :meth:`Predictor.record_verdict`).

    Returns:
        The evaluation id.

    Raises:
        UnknownTransactionError: No such transaction.
        ValueError: No log, or an invalid field.
        LogWriteError: The log could not be written.
    """
    log = predictor.log
    if log is None:
        raise ValueError(
            "This Predictor has no transaction log (log=None); evaluations cannot be "
            "recorded. Create it with log=True."
        )
    try:
        judged = log.transaction(transaction_id)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise LogWriteError(f"The log {log.where!r} could not be read ({type(exc).__name__}: {exc}).") from exc
    if judged is None:
        raise UnknownTransactionError(
            f"No transaction with id {transaction_id} in {log.where!r}. Use an id "
            "returned by /predict (Predictor.predict).")
    new_class = check_bool(new_class, "new_class")
    true_class = check_true_class(true_class, new_class=new_class,
                                  classes=predictor.classes_of(judged["run_id"]), run_id=judged["run_id"])
    try:
        return int(log.log_evaluation(
            transaction_id, verdict, reviewer=reviewer, true_class=true_class, time=time,
            simulated=simulated, new_class=new_class, note=note))
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise LogWriteError(
            f"The evaluation could not be written to {log.where!r} "
            f"({type(exc).__name__}: {exc})."
        ) from exc
