"""`brandlens models`: the note says what holds for a version today.

The trainer's promotion note is what held when the version was trained, so the current
version read "no current version"; a training that hit the model-server's time limit
said so only in the service's StatusMessage, which the CLI never showed."""

from __future__ import annotations

from brandlens_cli.training import model_note
from brandlens_trainer.handler import completion_warning
from brandlens_trainer.models import ModelStatus, ModelVersion

TIME_LIMIT = (
    "The model is ready to run. Training hit its time limit (45 s of training) after 120 of "
    "2000 steps; raise BRANDLENS_MODEL_SERVER_MAX_TRAINING_SECONDS and train again."
)


def version(**fields: object) -> ModelVersion:
    base = {"project": "shop", "version": "ds-1", "dataset_id": "ds-1"}
    return ModelVersion.model_validate(base | {"status": ModelStatus.TRAINED} | fields)


def test_the_first_version_reads_as_current_not_as_no_current_version() -> None:
    first = version(promoted=True, promotion_note="no current version")
    note = model_note(first, current=True, pinned=False)
    assert note == "current since it was trained (no version was current then)"


def test_notes_follow_what_is_current_today() -> None:
    old = version(promoted=True, promotion_note="no current version")
    assert model_note(old, current=False, pinned=False) == (
        "promoted when trained; another version is current now"
    )
    worse = version(promoted=False, promotion_note="F1 0.5 is below the current version's 0.9")
    assert model_note(worse, current=False, pinned=False) == (
        "not promoted (F1 0.5 is below the current version's 0.9)"
    )
    assert model_note(worse, current=True, pinned=True) == "pinned as the current version"
    assert model_note(version(), current=False, pinned=False) == ""  # not promoted yet
    failed = version(status=ModelStatus.FAILED, reason="training failed: no boxes")
    assert model_note(failed, current=False, pinned=False) == "training failed: no boxes"


def test_a_time_limit_warning_is_kept_and_shown() -> None:
    assert completion_warning("The model is ready to run.") is None
    assert completion_warning(None) is None
    warning = completion_warning(TIME_LIMIT)
    assert warning is not None
    assert warning.startswith("Training hit its time limit (45 s of training) after 120 of 2000")
    stopped = version(promoted=True, promotion_note="no current version", warning=warning)
    note = model_note(stopped, current=True, pinned=False)
    assert note.startswith("current since it was trained (no version was current then); ")
    assert "after 120 of 2000 steps" in note
