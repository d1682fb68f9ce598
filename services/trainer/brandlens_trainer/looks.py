"""When the trainer looks at a training version next: just after its predicted end.

Rekognition's DescribeProjectVersions has no progress field. The model-server says it in
StatusMessage (``training: 42% (step 840/2000), about 95 s left``); AWS says nothing of
progress. So:

- the service predicts the end (``about N s left``): the end is ``now + N``;
- it only gives a percentage (``training: 42%``): the rate between this look and the
  last one that saw another percentage predicts the end;
- at 100 % and still training (evaluation, upload), the end is now;
- no percentage (AWS, a queued version): no prediction, the backoff
  (:func:`brandlens_core.follow.backoff_delay`: ``POLL_INTERVAL_SECONDS`` times 1.5 per look,
  at most ``POLL_MAX_INTERVAL_SECONDS``).

With a predicted end ``remaining`` seconds away, the next look is
:data:`AFTER_END_SECONDS` after it when that is within ``POLL_INTERVAL_SECONDS``; further
away, after half the remaining time (a fresher prediction), at least
``POLL_INTERVAL_SECONDS``; past the predicted end, every ``POLL_INTERVAL_SECONDS``. Every
wait is at most ``POLL_MAX_INTERVAL_SECONDS`` (and SQS's 900 s). So a training that ends
when predicted or later is noticed within ``POLL_INTERVAL_SECONDS`` (15 s by default) of
its end, plus the time to handle the message. A training may also end earlier than
predicted (the detector stops when validation mAP stops improving, typically well inside
its budget), so while the service reports progress no wait is longer than
``2 x POLL_INTERVAL_SECONDS`` (30 s by default): a model is promoted within 30 s of its
end however it ended, for one DescribeProjectVersions call per 30 s of training. Without
progress (AWS) the backoff's ``POLL_MAX_INTERVAL_SECONDS`` (120 s) bounds it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from brandlens_core.follow import SQS_MAX_DELAY_SECONDS, backoff_delay

AFTER_END_SECONDS = 3.0
MIN_DELAY_SECONDS = 1

_PERCENT = re.compile(r"^training: (\d{1,3}(?:\.\d+)?) ?%")
_LEFT = re.compile(r"\babout (\d+(?:\.\d+)?) s left\b")


@dataclass(frozen=True)
class Progress:
    """What a StatusMessage says of a running training."""

    fraction: float
    seconds_left: float | None = None


def parse_progress(message: object) -> Progress | None:
    """``training: 42%`` (the model-server), with ``about 95 s left`` when it predicts the
    end; None for any other message (AWS's, a queued version's)."""
    if not isinstance(message, str):
        return None
    found = _PERCENT.match(message.strip())
    if found is None:
        return None
    fraction = min(1.0, float(found.group(1)) / 100)
    left = _LEFT.search(message)
    return Progress(fraction, float(left.group(1)) if left else None)


@dataclass(frozen=True)
class Observation:
    """The last progress the trainer saw change, and when it first saw it."""

    fraction: float
    at: datetime


def predict_end(
    now: datetime, progress: Progress | None, previous: Observation | None
) -> datetime | None:
    """When the training should end, or None when nothing predicts it."""
    if progress is None:
        return None
    if progress.seconds_left is not None:
        return now + timedelta(seconds=progress.seconds_left)
    if progress.fraction >= 1.0:
        return now
    if previous is None or progress.fraction <= previous.fraction:
        return None
    elapsed = (now - previous.at).total_seconds()
    if elapsed <= 0:
        return None
    rate = (progress.fraction - previous.fraction) / elapsed
    return now + timedelta(seconds=(1.0 - progress.fraction) / rate)


def delay_to_look(remaining: float, near_seconds: float, max_seconds: float) -> int:
    """Seconds to wait before looking at a training predicted to end in ``remaining``."""
    if remaining <= 0:
        delay = near_seconds  # overdue: it is finishing (evaluation, upload) or slower
    elif remaining + AFTER_END_SECONDS <= near_seconds:
        delay = remaining + AFTER_END_SECONDS  # just after the predicted end
    else:
        delay = max(near_seconds, remaining / 2)  # closer, for a fresher prediction
    capped = min(delay, max_seconds, SQS_MAX_DELAY_SECONDS)
    return max(MIN_DELAY_SECONDS, math.ceil(capped))


@dataclass(frozen=True)
class Plan:
    """The next look, and what to record of this one on the version's row."""

    delay_seconds: int
    expected_end: datetime | None = None
    progress: float | None = None
    observation: Observation | None = None

    def fields(self, now: datetime) -> dict[str, Any]:
        out: dict[str, Any] = {
            "next_look_at": (now + timedelta(seconds=self.delay_seconds)).isoformat(),
            "expected_end_at": self.expected_end.isoformat() if self.expected_end else None,
            "progress": self.progress,
        }
        if self.observation is not None:
            out["progress_seen_at"] = self.observation.at.isoformat()
            out["progress_seen"] = self.observation.fraction
        return out


def plan_next_look(
    *,
    now: datetime,
    seq: int,
    message: object,
    previous: Observation | None,
    first_seconds: float,
    max_seconds: float,
) -> Plan:
    """The look after look ``seq - 1``, from what the service said at ``now``."""
    progress = parse_progress(message)
    end = predict_end(now, progress, previous)
    observation = previous
    if progress is not None and (previous is None or progress.fraction != previous.fraction):
        observation = Observation(progress.fraction, now)
    fraction = progress.fraction if progress else None
    if end is None and progress is not None:  # a percentage, no rate yet: it may end soon
        delay = min(backoff_delay(seq, first_seconds, max_seconds), math.ceil(2 * first_seconds))
        return Plan(delay, None, fraction, observation)
    if end is None:
        return Plan(backoff_delay(seq, first_seconds, max_seconds), None, fraction, observation)
    remaining = (end - now).total_seconds()
    # It may stop early (validation mAP no longer improving): never look later than
    # 2 x first_seconds while it reports progress.
    delay = min(delay_to_look(remaining, first_seconds, max_seconds), math.ceil(2 * first_seconds))
    return Plan(delay, end, fraction, observation)
