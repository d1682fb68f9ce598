"""Which stack a ``brandlens`` command talks to, and when a job has settled there.

``up`` and ``demo`` start their own stack. Every other command talks to:

1. the stack described by the environment (``BRANDLENS_AWS_*``,
   ``BRANDLENS_STACK_NAME``, the usual AWS credential chain) when
   ``BRANDLENS_AWS_ENDPOINT_URL`` is set or ``--aws`` is passed;
2. otherwise the local stack a running ``brandlens up`` described in
   ``<state dir>/local.json``, with the fake local credentials;
3. otherwise nothing: :class:`NoTargetError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from brandlens_cli.embedded import LOCAL_CREDENTIALS, read_local_state
from brandlens_core.events import Purpose
from brandlens_core.jobs import TERMINAL, Job, JobStatus
from brandlens_core.settings import STACK_NAME_RE, AwsSettings, StackSettings
from brandlens_core.stack import StackNames

NO_STACK_MESSAGE = (
    "start one with `brandlens up` (or pass --aws to use AWS settings from the environment)"
)


def no_stack_message(state_dir: Path) -> str:
    """No running stack described in ``state_dir``: where the CLI looked, and what to do."""
    state_file = (state_dir / "local.json").absolute()
    found = "a stopped stack's" if state_file.exists() else "no"
    return (
        f"no local stack is running for state dir {state_dir.absolute()} ({found} "
        f"{state_file.name} there): {NO_STACK_MESSAGE}; a stack started with another "
        "state dir (in another directory, or `brandlens up --state-dir DIR`) is found by "
        "passing the same --state-dir DIR"
    )


# Which services move a job on from each non-terminal status. A job whose
# status no running service moves on has settled.
ADVANCED_BY: dict[JobStatus, frozenset[str]] = {
    JobStatus.ACCEPTED: frozenset({"framer"}),
    JobStatus.FRAMING: frozenset({"framer"}),
    JobStatus.FRAMED: frozenset({"labeler", "inferer"}),
    # LABELING waits for people (Label Studio, Ground Truth) or for annotation files:
    # no service moves it on by itself, so a CLI following the job stops there.
    JobStatus.LABELING: frozenset(),
    JobStatus.ANALYZING: frozenset({"inferer"}),
}


class NoTargetError(RuntimeError):
    """Nothing to talk to, or the settings describing it are invalid."""


@dataclass(frozen=True)
class Target:
    """A stack the CLI talks to."""

    aws: AwsSettings
    names: StackNames
    description: str
    # The services known to run there; None means "all of them" (a deployed stack).
    services: frozenset[str] | None = None
    local: bool = False

    @property
    def jobs_table(self) -> str:
        return self.names.table("jobs")


def local_settings(endpoint_url: str, region: str) -> AwsSettings:
    """Settings pointing every API at the local moto server, whatever the environment says."""
    values: dict[str, Any] = {"region": region, "endpoint_url": endpoint_url}
    for name in AwsSettings.model_fields:
        if name.endswith("_endpoint_url") and name != "endpoint_url":
            values[name] = None
    return AwsSettings.model_validate(values)


def use_local_credentials(environ: MutableMapping[str, str] | None = None) -> None:
    """Use the fake credentials moto accepts, so no real profile or key is ever sent."""
    env = os.environ if environ is None else environ
    env.update(LOCAL_CREDENTIALS)
    env.pop("AWS_PROFILE", None)


def target_from_state(state: Mapping[str, Any]) -> Target:
    try:
        endpoint_url = str(state["endpoint_url"])
        stack_name = str(state["stack_name"])
    except KeyError as missing:
        raise NoTargetError(f"the local stack's state file lacks {missing}") from None
    if not STACK_NAME_RE.match(stack_name):
        raise NoTargetError(f"the local stack's state file names an invalid stack {stack_name!r}")
    region = str(state.get("region") or "us-east-1")
    services = frozenset(str(s) for s in state.get("services", ()))
    return Target(
        aws=local_settings(endpoint_url, region),
        names=StackNames(stack_name),
        description=f"local stack {stack_name!r} at {endpoint_url}",
        services=services,
        local=True,
    )


def target_from_environment() -> Target:
    try:
        aws = AwsSettings()
        stack = StackSettings()
    except ValidationError as exc:
        raise NoTargetError(f"invalid BRANDLENS_* settings in the environment: {exc}") from None
    where = aws.endpoint_for("s3") or f"AWS {aws.region}"
    return Target(
        aws=aws,
        names=StackNames.from_settings(stack),
        description=f"stack {stack.stack_name!r} at {where}",
    )


def resolve_target(*, use_aws: bool, state_dir: Path) -> Target:
    """The stack to talk to (see the module docstring); may set local credentials."""
    if use_aws or os.environ.get("BRANDLENS_AWS_ENDPOINT_URL"):
        return target_from_environment()
    state = read_local_state(state_dir)
    if state is None:
        raise NoTargetError(no_stack_message(state_dir))
    target = target_from_state(state)
    use_local_credentials()
    return target


def is_settled(job: Job | None, running: Iterable[str] | None) -> bool:
    """Whether a job will stay as it is: terminal, or no running service moves it on.

    ``running`` is the set of services known to run; None means every service
    runs (a deployed stack), so only a terminal status is settled.
    """
    if job is None:  # ingest has not created it yet
        return False
    if job.status in TERMINAL:
        return True
    if running is None:
        return False
    movers = ADVANCED_BY.get(job.status)
    if job.status is JobStatus.FRAMED and job.purpose is not None:
        # framed training media go to the labeler, framed analysis media to the inferer
        movers = frozenset({"labeler" if job.purpose is Purpose.TRAINING else "inferer"})
    if movers is None:  # a status this CLI does not know: only a terminal one settles
        return False
    return not (movers & set(running))
