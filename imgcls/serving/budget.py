"""The decode budget: how many requests decode and infer at once, and how much memory their decoding may take.

Starlette runs the blocking part of a request (decode, model call, log
write) in a thread pool of 40 threads, and nothing else bounded how many
images were decoded at once: four 8000x8000 RGBA PNGs took a server from
0.8 GB to 6.5 GB. :class:`DecodeBudget` is the bound, in two parts:

* **slots**: at most ``max_concurrent`` requests decode or wait for the model
  at once (a counting semaphore, held from before decoding until the
  prediction is computed);
* **memory**: the decode costs in flight (:func:`imgcls.core.decode_cost`,
  bytes from the header) add up to at most ``decode_memory`` bytes (a
  weighted semaphore, held while the image is decoded; a decoded image is
  only the model's small input after that).

A request that cannot get both within ``queue_timeout`` seconds is refused
with :class:`Overloaded` (the server answers 503 with ``Retry-After``); big
images therefore queue behind each other instead of exhausting memory. A
request whose own cost is above ``max_decode_bytes`` never enters the queue:
it is refused at once (413). Waiting is first-fit: a small image is not held
up behind a big one that does not fit yet (a big one still runs as soon as
the memory in flight leaves room for it, since each image is at most
``max_decode_bytes`` and the default ``decode_memory`` is at least that).
"""

from __future__ import annotations

import math
import threading
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager

from imgcls.core import check_int, check_number

__all__ = ["DecodeBudget", "Overloaded"]


class Overloaded(RuntimeError):
    """No decode slot or memory freed up within the queue timeout.

    Attributes:
        waited_s: Seconds waited.
        retry_after: Seconds a client should wait before retrying.
    """

    def __init__(self, message: str, *, waited_s: float, retry_after: int) -> None:
        super().__init__(message)
        self.waited_s = waited_s
        self.retry_after = retry_after


class DecodeBudget:
    """Bounds concurrent decodes+inferences (slots) and the memory of decodes in flight.

    Args:
        max_concurrent: Requests decoding or waiting for the model at once.
        decode_memory: Bytes of decode cost in flight at once.
        queue_timeout: Seconds a request may wait for a slot and memory.

    Attributes:
        max_concurrent, decode_memory, queue_timeout: As given.
        peak_memory: Largest decode cost in flight seen (bytes).
        peak_active: Largest number of requests holding a slot at once.
        refused: Requests refused with :class:`Overloaded`.
    """

    def __init__(self, *, max_concurrent: int, decode_memory: int, queue_timeout: float) -> None:
        self.max_concurrent = check_int(max_concurrent, "max_concurrent")
        self.decode_memory = check_int(decode_memory, "decode_memory")
        self.queue_timeout = check_number(queue_timeout, "queue_timeout", 0.0)
        self._cond = threading.Condition()
        self._active = 0
        self._memory = 0
        self.peak_memory = 0
        self.peak_active = 0
        self.refused = 0

    def __repr__(self) -> str:
        return (f"DecodeBudget(max_concurrent={self.max_concurrent}, "
                f"decode_memory={self.decode_memory:,}, queue_timeout={self.queue_timeout:g})")

    def state(self) -> dict:
        """Requests holding a slot, decode bytes in flight, and the peaks and refusals so far."""
        with self._cond:
            return {"active": self._active, "memory_in_flight": self._memory,
                    "peak_active": self.peak_active, "peak_memory": self.peak_memory,
                    "refused": self.refused, "max_concurrent": self.max_concurrent,
                    "decode_memory": self.decode_memory}

    def _wait(self, ready, deadline: float, started: float, what: str) -> None:
        while not ready():
            left = deadline - _time.monotonic()
            if left <= 0:
                self.refused += 1
                waited = _time.monotonic() - started
                raise Overloaded(
                    f"the server is busy: no {what} freed up within {self.queue_timeout:g} s "
                    f"(at most {self.max_concurrent} requests decode at once, "
                    f"{self.decode_memory:,} bytes of decoding in flight); retry later",
                    waited_s=waited, retry_after=max(1, math.ceil(min(self.queue_timeout, 30.0) / 2)))
            self._cond.wait(left)

    @contextmanager
    def slot(self, *, deadline: float | None = None) -> Iterator[float]:
        """Hold one of the ``max_concurrent`` slots (waits up to the deadline).

        Yields:
            The deadline (``time.monotonic()`` seconds) the memory wait must also meet.

        Raises:
            Overloaded: No slot freed up in time.
        """
        started = _time.monotonic()
        deadline = started + self.queue_timeout if deadline is None else deadline
        with self._cond:
            self._wait(lambda: self._active < self.max_concurrent, deadline, started, "decode slot")
            self._active += 1
            self.peak_active = max(self.peak_active, self._active)
        try:
            yield deadline
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextmanager
    def memory(self, cost: int, *, deadline: float | None = None) -> Iterator[None]:
        """Hold ``cost`` bytes of the decode memory while decoding (waits up to the deadline).

        A cost above ``decode_memory`` is clipped to it (it then runs alone);
        callers refuse costs above ``max_decode_bytes`` before asking.

        Raises:
            Overloaded: The memory did not free up in time.
        """
        started = _time.monotonic()
        deadline = started + self.queue_timeout if deadline is None else deadline
        need = max(0, min(int(cost), self.decode_memory))
        with self._cond:
            self._wait(lambda: self._memory + need <= self.decode_memory, deadline, started,
                       "decode memory")
            self._memory += need
            self.peak_memory = max(self.peak_memory, self._memory)
        try:
            yield
        finally:
            with self._cond:
                self._memory -= need
                self._cond.notify_all()
