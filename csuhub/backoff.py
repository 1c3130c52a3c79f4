"""Waits between retries of something that keeps failing.

Written once for the supervisor (crashed tasks), the camera health checks and
the recorders (ffmpeg restarts), which had each grown their own copy:

* :class:`Backoff`: capped exponential (1, 2, 4... up to ``maximum``), for
  faults that may clear at any moment;
* :class:`SteppedBackoff`: fixed multiples of a base wait (1, 2, 5, then 10
  for ever), for a camera refusing the credentials, where retrying every few
  seconds locks the account.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: 1, 2, 5, then 10 times the base wait: for 60 s, the fourth try is 8 min after
#: the first and each later one 10 min apart
AUTH_STEPS: tuple[float, ...] = (1, 2, 5, 10)


@dataclass(slots=True)
class Backoff:
    """Capped exponential backoff. ``next()`` gives the wait to use now and
    doubles the following one; ``reset()`` after a success (or a run that lasted
    long enough to count as one) starts again from ``initial``."""

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    #: the wait the next ``next()`` returns
    current: float = field(init=False)

    def __post_init__(self) -> None:
        if self.initial < 0 or self.factor < 1:
            raise ValueError("need initial >= 0 and factor >= 1")
        self.current = self.initial

    def next(self) -> float:
        wait = self.current
        self.current = min(self.current * self.factor, self.maximum)
        return wait

    def reset(self) -> None:
        self.current = self.initial


@dataclass(slots=True)
class SteppedBackoff:
    """``base`` times each of ``steps`` in turn, then the last step for ever;
    ``failures`` counts the consecutive failures so far (the step reached)."""

    base: float
    steps: tuple[float, ...] = AUTH_STEPS
    failures: int = 0

    def __post_init__(self) -> None:
        if not self.steps or self.base < 0:
            raise ValueError("need at least one step and a non-negative base")

    def next(self) -> float:
        wait = self.base * self.steps[min(self.failures, len(self.steps) - 1)]
        self.failures += 1
        return wait

    def reset(self) -> None:
        self.failures = 0
