"""Issue 19: the trainer looks just after the end the model-server's progress predicts.

The scheduling is pure: what the service said, the last progress seen change, the settings
-> the next wait. The model-server's half: the predicted end and its StatusMessage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from brandlens_cli.training import model_note, training_note
from brandlens_core.follow import backoff_delay
from brandlens_model_server.records import S3Location, VersionRecord, VersionStatus
from brandlens_model_server.training import expected_end, progress_text
from brandlens_trainer.looks import (
    AFTER_END_SECONDS,
    Observation,
    Progress,
    delay_to_look,
    parse_progress,
    plan_next_look,
    predict_end,
)
from brandlens_trainer.models import ModelStatus, ModelVersion
from brandlens_trainer.settings import TrainerSettings

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
S = TrainerSettings()


def plan(message: object, previous: Observation | None = None, seq: int = 2) -> tuple[int, float]:
    p = plan_next_look(
        now=NOW, seq=seq, message=message, previous=previous,
        first_seconds=S.poll_interval_seconds, max_seconds=S.poll_max_interval_seconds,
    )  # fmt: skip
    left = (p.expected_end - NOW).total_seconds() if p.expected_end else -1.0
    return p.delay_seconds, left


def test_defaults_bound_the_promotion_delay() -> None:
    assert S.poll_interval_seconds + AFTER_END_SECONDS <= 30
    assert S.poll_interval_seconds <= 20  # near and past the predicted end
    assert S.poll_max_interval_seconds <= 900  # SQS


def test_parse_what_the_model_server_says() -> None:
    assert parse_progress("training: 42%") == Progress(0.42)
    assert parse_progress("training: 42% (step 840/2000), about 95 s left") == Progress(0.42, 95)
    assert parse_progress(
        "training: 7%, about 600 s left; restarted after a model-server restart (attempt 2 of 3)"
    ) == Progress(0.07, 600)
    for other in (None, "", "queued: waiting for a training slot", "The model is training.", 3):
        assert parse_progress(other) is None


def test_the_end_from_the_services_estimate_or_from_the_rate() -> None:
    assert predict_end(NOW, Progress(0.5, 95), None) == NOW + timedelta(seconds=95)
    assert predict_end(NOW, Progress(1.0), None) == NOW  # 100 %, evaluating
    assert predict_end(NOW, Progress(0.5), None) is None  # one percentage: no rate yet
    before = Observation(0.3, NOW - timedelta(seconds=40))  # 20 % in 40 s: 0.5 %/s
    assert predict_end(NOW, Progress(0.5), before) == NOW + timedelta(seconds=100)
    assert predict_end(NOW, Progress(0.3), before) is None  # no change: no rate
    assert predict_end(NOW, None, before) is None


def test_far_sparse_near_just_after_the_end_past_it_every_interval() -> None:
    near, cap = S.poll_interval_seconds, S.poll_max_interval_seconds
    assert delay_to_look(3600, near, cap) == cap  # early in a long training: sparse
    assert delay_to_look(3600, near, 900) == 900  # SQS's limit
    assert delay_to_look(3600, near, 5000) == 900
    assert delay_to_look(100, near, cap) == 50  # half the remaining time
    assert delay_to_look(25, near, cap) == near  # not past the end
    assert delay_to_look(10, near, cap) == 10 + AFTER_END_SECONDS  # just after the end
    assert delay_to_look(0.2, near, cap) == 4  # whole seconds, rounded up
    assert delay_to_look(0, near, cap) == near  # overdue: finishing
    assert delay_to_look(-300, near, cap) == near
    assert delay_to_look(10, near, 2) == 2  # the cap holds everywhere


def test_a_simulated_training_is_noticed_just_after_its_end() -> None:
    """A training of 20 minutes at an even rate, seen through the model-server's ETA: few
    looks early, and the one that sees it completed comes <= 30 s after the end."""
    end, t, looks = 1200.0, 0.0, 0
    t += S.poll_interval_seconds  # the first look
    while t < end:
        looks += 1
        delay, _ = plan(f"training: {int(100 * t / end)}%, about {end - t:.0f} s left")
        t += delay
    assert 0 <= t - end <= 30
    assert looks <= 42  # at most 30 s apart (it may stop early): vs 80 looks every 15 s


def test_a_training_that_stops_early_is_noticed_within_30_s() -> None:
    """Predicted to take 20 minutes, it stops at 400 s (validation mAP stopped improving):
    the look after its end still comes <= 30 s after it."""
    predicted_end, stopped, t = 1200.0, 400.0, float(S.poll_interval_seconds)
    while t < stopped:
        delay, _ = plan(
            f"training: {int(100 * t / predicted_end)}%, about {predicted_end - t:.0f} s left"
        )
        t += delay
    assert 0 <= t - stopped <= 30


def test_without_progress_the_backoff_bounds_the_delay() -> None:
    """Rekognition on AWS says nothing of progress: the backoff, capped at
    POLL_MAX_INTERVAL_SECONDS (120 s), which bounds the promotion delay there."""
    for seq in (1, 2, 5, 50):
        delay, left = plan("The model is being trained.", seq=seq)
        assert delay == backoff_delay(seq, S.poll_interval_seconds, S.poll_max_interval_seconds)
        assert left == -1.0
    assert plan(None, seq=50)[0] == S.poll_max_interval_seconds == 120


def test_a_plan_keeps_the_last_change_for_the_rate() -> None:
    first = plan_next_look(
        now=NOW, seq=2, message="training: 10%", previous=None, first_seconds=15, max_seconds=120
    )
    assert first.observation == Observation(0.1, NOW)
    assert first.expected_end is None
    later = NOW + timedelta(seconds=30)
    same = plan_next_look(
        now=later, seq=3, message="training: 10%", previous=first.observation,
        first_seconds=15, max_seconds=120,
    )  # fmt: skip
    assert same.observation == first.observation  # measured from when it last changed
    moved = plan_next_look(
        now=later, seq=3, message="training: 40%", previous=first.observation,
        first_seconds=15, max_seconds=120,
    )  # fmt: skip
    assert moved.expected_end == later + timedelta(seconds=60)  # 1 %/s: 60 % left
    assert moved.delay_seconds == 30
    fields = moved.fields(later)
    assert fields["progress"] == pytest.approx(0.4)
    assert fields["next_look_at"] == (later + timedelta(seconds=30)).isoformat()


def test_the_model_server_predicts_from_the_rate_since_the_first_step() -> None:
    assert expected_end(None, 100.0, 0.5, 0.0, 3600) is None
    assert expected_end((98.0, 0.1), 100.0, 0.2, 0.0, 3600) is None  # too short to tell
    assert expected_end((90.0, 0.1), 100.0, 0.2, 0.0, 3600) == pytest.approx(180.0)
    assert expected_end((90.0, 0.1), 100.0, 0.2, 0.0, 150) == 150.0  # the time limit stops it
    assert expected_end((90.0, 0.1), 100.0, 1.0, 0.0, 3600) == 100.0
    assert progress_text(42, 840, 2000) == "training: 42% (step 840/2000)"
    assert progress_text(42, None, 2000) == "training: 42%"


def test_the_status_message_counts_down_and_keeps_its_notes() -> None:
    arn = "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1"
    record = VersionRecord(
        project="p", version="v", arn=arn,
        created_at=0.0, status=VersionStatus.TRAINING_IN_PROGRESS,
        status_message="training: 42% (step 840/2000); restarted after a model-server restart "
        "(attempt 2 of 3)",
        output_bucket="b", output_prefix="models", train_manifest=S3Location(bucket="b", key="k"),
        expected_end_at=1000.0,
    )  # fmt: skip
    assert record.status_message_at(905.2) == (
        "training: 42% (step 840/2000), about 95 s left; restarted after a model-server "
        "restart (attempt 2 of 3)"
    )
    assert record.status_message_at(2000.0).startswith("training: 42% (step 840/2000), about 0 s")
    assert parse_progress(record.status_message_at(905.2)) == Progress(0.42, 95)
    record.expected_end_at = None
    assert record.status_message_at(905.2) == record.status_message


def test_brandlens_models_shows_progress_end_and_promotion() -> None:
    training = ModelVersion(
        project="shop", version="ds-1", dataset_id="ds-1", progress=0.42,
        expected_end_at=NOW + timedelta(seconds=95), next_look_at=NOW + timedelta(seconds=98),
    )  # fmt: skip
    note = training_note(training, NOW)
    assert note.startswith("training 42 %, expected to end ")
    assert "(in 95 s); next look " in note
    assert model_note(training, current=False, pinned=False, now=NOW) == note
    late = training.model_copy(update={"expected_end_at": NOW - timedelta(seconds=5)})
    assert "past its predicted end" in training_note(late, NOW)
    aws = ModelVersion(
        project="shop", version="ds-1", dataset_id="ds-1", next_look_at=NOW + timedelta(seconds=60)
    )
    assert training_note(aws, NOW).startswith("training (the service reports no progress); next")
    trained = ModelVersion(
        project="shop", version="ds-1", dataset_id="ds-1", status=ModelStatus.TRAINED,
        promoted=True, promotion_note="no current version", promoted_at=NOW,
    )  # fmt: skip
    note = model_note(trained, current=True, pinned=False)
    assert note.startswith("current since it was trained, 2026-12-01 ")
    assert note.endswith("(no version was current then)")
