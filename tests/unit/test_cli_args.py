"""Argument validation and target resolution of the brandlens CLI (no stack needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from brandlens_cli.main import cli
from brandlens_cli.target import NO_STACK_MESSAGE


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff not really a jpeg")
    return path


def write_state(state_dir: Path, **overrides: object) -> Path:
    state = {
        "endpoint_url": "http://127.0.0.1:9",
        "stack_name": "brandlens",
        "region": "us-east-1",
        "services": ["ingest"],
        "pid": os.getpid(),
        "media_bucket": "brandlens-media",
        "artifacts_bucket": "brandlens-artifacts",
    } | overrides
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "local.json"
    path.write_text(json.dumps(state))
    return path


def test_help_lists_the_commands(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("up", "submit", "jobs", "job", "demo"):
        assert command in result.output


def test_submit_requires_an_existing_file(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jpg"
    result = runner.invoke(
        cli, ["submit", str(missing), "--project", "acme", "--purpose", "analysis"]
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_submit_refuses_a_directory(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli, ["submit", str(tmp_path), "--project", "acme", "--purpose", "analysis"]
    )
    assert result.exit_code == 2
    assert "is a directory" in result.output


@pytest.mark.parametrize("project", ["Acme", "acme_1", "-acme", "acme-", "a" * 64, "ac me", ""])
def test_submit_refuses_an_invalid_project(runner: CliRunner, photo: Path, project: str) -> None:
    result = runner.invoke(
        cli, ["submit", str(photo), "--project", project, "--purpose", "analysis"]
    )
    assert result.exit_code == 2
    assert "not a valid project name" in result.output


@pytest.mark.parametrize("project", ["acme", "a", "acme-2", "0x", "a" * 63])
def test_valid_projects_get_past_validation(
    runner: CliRunner, photo: Path, tmp_path: Path, project: str
) -> None:
    # Valid arguments; it then fails only because no stack is running.
    result = runner.invoke(
        cli,
        [
            "submit",
            str(photo),
            "--project",
            project,
            "--purpose",
            "training",
            "--state-dir",
            str(tmp_path / "state"),
        ],
    )
    assert result.exit_code == 1
    assert NO_STACK_MESSAGE in result.output


def test_submit_refuses_an_unknown_purpose(runner: CliRunner, photo: Path) -> None:
    result = runner.invoke(cli, ["submit", str(photo), "--project", "acme", "--purpose", "fun"])
    assert result.exit_code == 2
    assert "analysis" in result.output
    assert "training" in result.output


def test_submit_requires_project_and_purpose(runner: CliRunner, photo: Path) -> None:
    result = runner.invoke(cli, ["submit", str(photo), "--purpose", "analysis"])
    assert result.exit_code == 2
    assert "--project" in result.output
    result = runner.invoke(cli, ["submit", str(photo), "--project", "acme"])
    assert result.exit_code == 2
    assert "--purpose" in result.output


def test_submit_refuses_a_file_name_ingest_would_reject(runner: CliRunner, tmp_path: Path) -> None:
    odd = tmp_path / "tab\there.jpg"
    odd.write_bytes(b"x")
    result = runner.invoke(cli, ["submit", str(odd), "--project", "acme", "--purpose", "analysis"])
    assert result.exit_code == 2
    assert "control character" in result.output


def test_submit_refuses_a_non_positive_timeout(runner: CliRunner, photo: Path) -> None:
    result = runner.invoke(
        cli,
        [
            "submit",
            str(photo),
            "--project",
            "acme",
            "--purpose",
            "analysis",
            "--timeout-seconds",
            "0",
        ],
    )
    assert result.exit_code == 2


@pytest.mark.parametrize(
    "args",
    [["jobs"], ["job", "job-123"], ["submit", "PHOTO", "--project", "a", "--purpose", "analysis"]],
)
def test_without_a_local_stack_commands_say_how_to_start_one(
    runner: CliRunner, tmp_path: Path, photo: Path, args: list[str]
) -> None:
    args = [str(photo) if a == "PHOTO" else a for a in args]
    result = runner.invoke(cli, [*args, "--state-dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert NO_STACK_MESSAGE in result.output


def test_a_stale_state_file_is_no_running_stack(runner: CliRunner, tmp_path: Path) -> None:
    write_state(tmp_path, pid=2**22 + 12345)  # no such process
    result = runner.invoke(cli, ["jobs", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert NO_STACK_MESSAGE in result.output


def test_jobs_refuses_an_invalid_limit_and_project(runner: CliRunner) -> None:
    assert runner.invoke(cli, ["jobs", "--limit", "0"]).exit_code == 2
    assert runner.invoke(cli, ["jobs", "--project", "Bad_Name"]).exit_code == 2


def test_up_refuses_when_a_local_stack_is_running(runner: CliRunner, tmp_path: Path) -> None:
    write_state(tmp_path)  # pid = this process, so it looks alive
    result = runner.invoke(cli, ["up", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "already running" in result.output
    assert "http://127.0.0.1:9" in result.output


def test_up_refuses_an_invalid_stack_name(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["up", "--stack-name", "Bad_Name", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a valid stack name" in result.output


def test_up_refuses_a_port_in_use(runner: CliRunner, tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(cli, ["up", "--port", str(port), "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "in use" in result.output


def test_aws_errors_become_one_line_messages() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    from brandlens_cli.main import _aws_error_message

    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")
    assert "Could not connect" in (_aws_error_message(down) or "")
    missing = ClientError(
        {"Error": {"Code": "ResourceNotFoundException", "Message": "no table"}}, "GetItem"
    )
    assert "is the stack deployed" in (_aws_error_message(missing) or "")
    assert _aws_error_message(ValueError("a bug")) is None


def test_analyze_takes_several_files_and_folders(runner: CliRunner, tmp_path: Path) -> None:
    from brandlens_cli.analyze import media_files

    folder = tmp_path / "shoot"
    folder.mkdir()
    for name in ("b.MP4", "a.jpg", "notes.txt", ".hidden.jpg", "c.png"):
        (folder / name).write_bytes(b"x")
    (folder / "sub").mkdir()
    single = tmp_path / "promo.mov"
    single.write_bytes(b"x")
    files, skipped = media_files([single, folder, single])
    assert [f.name for f in files] == ["promo.mov", "a.jpg", "b.MP4", "c.png"]
    assert skipped == 1  # notes.txt; the hidden file and the sub folder are not counted
    # past argument parsing, to looking for the stack (there is none)
    result = runner.invoke(
        cli,
        ["analyze", str(single), str(folder), "--project", "acme"]
        + ["--state-dir", str(tmp_path / "none")],
    )
    assert "unexpected extra argument" not in result.output
    assert "no local stack is running" in result.output


def test_analyze_refuses_files_it_cannot_tell_apart_or_a_folder_without_media(
    runner: CliRunner, tmp_path: Path
) -> None:
    for d in ("x", "y", "empty"):
        (tmp_path / d).mkdir()
    (tmp_path / "x" / "a.jpg").write_bytes(b"x")
    (tmp_path / "y" / "a.jpg").write_bytes(b"x")
    (tmp_path / "empty" / "notes.txt").write_text("x")
    at = ["--project", "acme", "--state-dir", str(tmp_path / "none")]
    result = runner.invoke(cli, ["analyze", str(tmp_path / "x"), str(tmp_path / "y"), *at])
    assert result.exit_code == 2
    assert "have the same name" in result.output
    result = runner.invoke(cli, ["analyze", str(tmp_path / "empty"), *at])
    assert result.exit_code == 2
    assert "no media files" in result.output
    result = runner.invoke(cli, ["analyze", *at])
    assert result.exit_code == 2
    assert "Missing argument 'FILES...'" in result.output
    result = runner.invoke(cli, ["analyze", str(tmp_path / "x"), "--parallel-uploads", "0", *at])
    assert result.exit_code == 2


def test_no_stack_says_which_state_dir_it_looked_in(runner: CliRunner, tmp_path: Path) -> None:
    state = tmp_path / "elsewhere"
    result = runner.invoke(cli, ["jobs", "--state-dir", str(state)])
    assert result.exit_code == 1
    assert f"no local stack is running for state dir {state.absolute()}" in result.output
    assert "passing the same --state-dir DIR" in result.output
