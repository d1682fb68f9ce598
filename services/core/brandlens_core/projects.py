"""Projects and what belongs to them, in one DynamoDB table (``<stack>-projects``).

One partition per project; the sort key ``item`` says what a row is:

- ``project``: the project's settings (brands, labelling backend and its options);
- ``batch#<batch_id>``: a labelling batch (the labeler);
- ``dataset#<dataset_id>``: a dataset built from completed batches (the labeler).

Later services add their own kinds (model versions). Rows change only through
conditional writes, so two workers racing on one row never lose an update.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from brandlens_core.aws import Client, error_code
from brandlens_core.dynamo import from_item, to_attr, to_item
from brandlens_core.events import utc_now

PROJECT_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
"""Project names: lower-case letters, digits and inner hyphens, 1 to 63 characters."""

MAX_BRANDS = 250  # Rekognition Custom Labels: at most 250 labels per dataset
MAX_BRAND_CHARS = 100
# Characters no name may hold: control, format, line/paragraph separators, surrogates.
CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def control_character(text: str) -> str | None:
    """The first character of ``text`` in :data:`CONTROL_CATEGORIES`, or None."""
    return next((c for c in text if unicodedata.category(c) in CONTROL_CATEGORIES), None)


@functools.cache
def control_class() -> str:
    """A regular-expression class body of every character in :data:`CONTROL_CATEGORIES`,
    as ``\\uXXXX``/``\\UXXXXXXXX`` escapes (Python's syntax), for documents such as the
    OpenAPI schema; code calls :func:`control_character`."""
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        # lone surrogates (Cs) are left out: no valid UTF-8 or JSON text holds one, and
        # regex tools choke on a surrogate range
        if unicodedata.category(chr(code)) in CONTROL_CATEGORIES - {"Cs"}:
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))

    def escaped(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

    return "".join(escaped(a) if a == b else f"{escaped(a)}-{escaped(b)}" for a, b in ranges)


def check_project_name(name: str) -> str:
    if not isinstance(name, str) or not PROJECT_RE.match(name):
        raise ValueError(
            f"project name {name!r} is not valid: use 1-63 lower-case letters, digits "
            "and inner hyphens (like 'acme-drinks')"
        )
    return name


def check_brand(name: str) -> str:
    if not isinstance(name, str):
        raise ValueError(f"a brand name must be text, got {type(name).__name__}")
    stripped = name.strip()
    if not stripped:
        raise ValueError("a brand name cannot be empty")
    if len(stripped) > MAX_BRAND_CHARS:
        raise ValueError(f"brand name {stripped[:40]!r}… is longer than {MAX_BRAND_CHARS} chars")
    char = control_character(stripped)
    if char is not None:
        raise ValueError(
            f"brand name {stripped!r} contains the control character U+{ord(char):04X}"
        )
    return stripped


def check_brands(names: list[str]) -> list[str]:
    """Each brand checked (:func:`check_brand`), none twice ignoring case and spaces."""
    brands = [check_brand(v) for v in names]
    seen: set[str] = set()
    for brand in brands:
        if brand.casefold() in seen:
            raise ValueError(f"brand {brand!r} is listed twice (brands are compared ignoring case)")
        seen.add(brand.casefold())
    return brands


class LabelingBackend(StrEnum):
    LABEL_STUDIO = "label-studio"
    GROUND_TRUTH = "ground-truth"
    IMPORT = "import"


class BatchMode(StrEnum):
    PER_JOB = "per-job"  # every training video/image becomes its own batch when framed
    MANUAL = "manual"  # frames wait until `brandlens label PROJECT` gathers them into one


class GroundTruthOptions(BaseModel):
    """What CreateLabelingJob needs that the stack cannot know."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workteam_arn: str = Field(pattern=r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]+:\d{12}:workteam/")
    role_arn: str = Field(pattern=r"^arn:aws[a-z\-]*:iam::\d{12}:role/")
    task_type: Literal["image", "video"] = "image"
    workers_per_object: int = Field(default=1, ge=1, le=9)
    task_time_limit_seconds: int = Field(default=600, ge=30, le=28800)
    task_availability_seconds: int = Field(default=10 * 24 * 3600, ge=60, le=30 * 24 * 3600)
    max_concurrent_tasks: int = Field(default=1000, ge=1, le=5000)
    task_description: str = Field(
        default="Draw a tight box around every visible logo and pick its brand.", max_length=255
    )


class Project(BaseModel):
    """A project's settings. ``brands`` are the labels a labeller may draw."""

    model_config = ConfigDict(extra="ignore")

    project: str
    brands: list[str] = Field(default_factory=list, max_length=MAX_BRANDS)
    labeling: LabelingBackend = LabelingBackend.IMPORT
    batch_mode: BatchMode = BatchMode.PER_JOB
    ground_truth: GroundTruthOptions | None = None
    label_studio_project_id: int | None = None
    current_model_arn: str | None = Field(
        default=None,
        description="the model version analysis and model-assisted labelling use (the trainer "
        "promotes new versions; `brandlens models --pin` fixes one)",
    )
    current_model_pinned: bool = False
    rekognition_project_arn: str | None = None
    owner: str | None = Field(
        default=None,
        description="the API tenant that created the project (None: made with the CLI, only "
        "admin API keys see it)",
    )
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    revision: int = 1

    @field_validator("project")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_project_name(value)

    @field_validator("brands")
    @classmethod
    def _brands(cls, value: list[str]) -> list[str]:
        return check_brands(value)

    def check_backend(self) -> None:
        """Raise ValueError when the chosen backend lacks what it needs."""
        needs_brands = (LabelingBackend.LABEL_STUDIO, LabelingBackend.GROUND_TRUTH)
        if self.labeling in needs_brands and not self.brands:
            raise ValueError(
                f"project {self.project!r} labels with {self.labeling.value} but lists no "
                "brands; add them with `brandlens project create --brand NAME ...`"
            )
        if self.labeling is LabelingBackend.GROUND_TRUTH and self.ground_truth is None:
            raise ValueError(
                f"project {self.project!r} labels with ground-truth but has no Ground Truth "
                "options (workteam_arn, role_arn)"
            )


class ProjectNotFoundError(LookupError):
    def __init__(self, project: str) -> None:
        super().__init__(f"project {project!r} does not exist")
        self.project = project


class ConflictError(RuntimeError):
    """A conditional write lost: the row changed (or exists) since it was read."""


PROJECT_ITEM = "project"


class ProjectStore:
    """Rows of the projects table; every write is conditional."""

    def __init__(self, dynamodb: Client, table_name: str) -> None:
        self._db = dynamodb
        self.table = table_name

    @staticmethod
    def key(project: str, item: str) -> dict[str, Any]:
        return {"project": {"S": project}, "item": {"S": item}}

    # -- projects ------------------------------------------------------------------------------

    async def create_project(self, project: Project) -> Project:
        """Insert a project; ConflictError when the name is taken."""
        await self.put_new(project.project, PROJECT_ITEM, project.model_dump(mode="json"))
        return project

    async def save_project(self, project: Project) -> Project:
        """Create or replace a project's settings (CLI ``project create --update``)."""
        data = project.model_dump(mode="json")
        data["updated_at"] = utc_now().isoformat()
        await self._db.put_item(TableName=self.table, Item=to_item(data | {"item": PROJECT_ITEM}))
        return Project.model_validate(data)

    async def get_project(self, project: str) -> Project:
        row = await self.get(project, PROJECT_ITEM)
        if row is None:
            raise ProjectNotFoundError(project)
        return Project.model_validate(row)

    async def find_project(self, project: str) -> Project | None:
        row = await self.get(project, PROJECT_ITEM)
        return None if row is None else Project.model_validate(row)

    async def list_projects(self) -> list[Project]:
        projects: list[Project] = []
        paginator = self._db.get_paginator("scan")
        async for page in paginator.paginate(
            TableName=self.table,
            FilterExpression="#item = :p",
            ExpressionAttributeNames={"#item": "item"},
            ExpressionAttributeValues={":p": {"S": PROJECT_ITEM}},
        ):
            projects.extend(Project.model_validate(from_item(i)) for i in page.get("Items", []))
        return sorted(projects, key=lambda p: p.project)

    # -- generic rows ----------------------------------------------------------------------------

    async def get(self, project: str, item: str) -> dict[str, Any] | None:
        got = await self._db.get_item(
            TableName=self.table, Key=self.key(project, item), ConsistentRead=True
        )
        return from_item(got["Item"]) if "Item" in got else None

    async def put_new(self, project: str, item: str, data: dict[str, Any]) -> None:
        """Insert a row; ConflictError if it exists."""
        row = dict(data) | {"project": project, "item": item}
        try:
            await self._db.put_item(
                TableName=self.table,
                Item=to_item(row),
                ConditionExpression="attribute_not_exists(#item)",
                ExpressionAttributeNames={"#item": "item"},
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConflictError(f"{project}/{item} exists") from None
            raise

    async def update(
        self,
        project: str,
        item: str,
        fields: dict[str, Any],
        *,
        when: dict[str, Any] | None = None,
        add: dict[str, int] | None = None,
        add_to_set: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Set ``fields`` on an existing row if every ``when`` attribute equals its value
        (``None``: the attribute is absent). Returns the new row; ConflictError otherwise."""
        names: dict[str, str] = {"#item": "item"}
        values: dict[str, Any] = {}
        sets: list[str] = []
        adds: list[str] = []
        for i, (name, value) in enumerate(fields.items()):
            names[f"#s{i}"] = name
            if value is None:
                sets.append(f"#s{i} = :null{i}")
                values[f":null{i}"] = {"NULL": True}
            else:
                sets.append(f"#s{i} = :s{i}")
                values[f":s{i}"] = to_attr(value)
        for i, (name, amount) in enumerate((add or {}).items()):
            names[f"#a{i}"] = name
            values[f":a{i}"] = {"N": str(amount)}
            adds.append(f"#a{i} :a{i}")
        for i, (name, member) in enumerate((add_to_set or {}).items()):
            names[f"#t{i}"] = name
            values[f":t{i}"] = {"SS": [member]}
            adds.append(f"#t{i} :t{i}")
        conditions = ["attribute_exists(#item)"]
        for i, (name, value) in enumerate((when or {}).items()):
            names[f"#w{i}"] = name
            if value is None:
                conditions.append(f"(attribute_not_exists(#w{i}) OR #w{i} = :wnull{i})")
                values[f":wnull{i}"] = {"NULL": True}
            else:
                conditions.append(f"#w{i} = :w{i}")
                values[f":w{i}"] = to_attr(value)
        expression = ""
        if sets:
            expression += "SET " + ", ".join(sets)
        if adds:
            expression += " ADD " + ", ".join(adds)
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": self.key(project, item),
            "UpdateExpression": expression.strip(),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ReturnValues": "ALL_NEW",
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            response = await self._db.update_item(**kwargs)
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ConflictError(f"{project}/{item} changed or does not exist") from None
            raise
        return from_item(response["Attributes"])

    async def query(self, project: str, prefix: str) -> list[dict[str, Any]]:
        """Every row of ``project`` whose item starts with ``prefix``, in item order."""
        rows: list[dict[str, Any]] = []
        paginator = self._db.get_paginator("query")
        async for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="#project = :p AND begins_with(#item, :prefix)",
            ExpressionAttributeNames={"#project": "project", "#item": "item"},
            ExpressionAttributeValues={":p": {"S": project}, ":prefix": {"S": prefix}},
            ConsistentRead=True,
        ):
            rows.extend(from_item(i) for i in page.get("Items", []))
        return rows
