"""Settings of the labeler (prefix ``BRANDLENS_LABELER_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from brandlens_core.datasets import FEW_MEDIA
from brandlens_core.projects import LabelingBackend


class LabelerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRANDLENS_LABELER_", extra="ignore")

    default_backend: LabelingBackend = Field(
        LabelingBackend.IMPORT,
        description="Backend for projects that have no settings row (`brandlens project create`)",
    )
    # -- Label Studio ------------------------------------------------------------------------
    label_studio_url: str | None = Field(
        None, description="Base URL of the Label Studio server, e.g. http://127.0.0.1:8080"
    )
    label_studio_token: SecretStr | None = Field(
        None, description="Label Studio API token (Account & Settings -> Access Token)"
    )
    label_studio_timeout_seconds: float = Field(30.0, gt=0, le=600)
    webhook_url: str | None = Field(
        None,
        description="URL at which Label Studio can reach this labeler's webhook endpoint "
        "(…/label-studio/webhook); unset: completion is learnt by polling only",
    )
    webhook_host: str = Field("127.0.0.1", description="Interface the webhook endpoint binds")
    webhook_port: int = Field(0, ge=0, le=65535, description="0: no webhook endpoint")
    webhook_secret: SecretStr | None = Field(
        None, description="Shared secret Label Studio sends in the X-Brandlens-Secret header"
    )
    # -- following open batches ------------------------------------------------------------
    poll_interval_seconds: int = Field(
        60, ge=1, le=900, description="First wait before checking an open batch again"
    )
    poll_max_interval_seconds: int = Field(
        900, ge=1, le=900, description="Longest wait between checks (SQS delay limit: 900)"
    )
    presign_expiry_seconds: int = Field(
        7 * 24 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description="Lifetime of the image URLs handed to labellers (SigV4 allows 7 days)",
    )
    # -- datasets --------------------------------------------------------------------------------
    min_boxes_per_label: int = Field(
        10, ge=1, description="A brand with fewer boxes cannot train: the dataset fails"
    )
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Share of images held out")
    split_block_seconds: float = Field(
        10.0,
        gt=0,
        description="With few videos (SPLIT_MIN_VIDEOS), the split keeps blocks of this "
        "length together instead of whole videos",
    )
    split_min_videos: int = Field(
        FEW_MEDIA,
        ge=2,
        description="With fewer source videos than this, the split holds out time blocks "
        "of each video instead of whole videos",
    )
    max_annotation_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest annotations file read"
    )
    max_annotation_files: int = Field(
        1000, gt=0, description="Most files read under training/<project>/annotations/"
    )
    # -- Ground Truth -----------------------------------------------------------------------------
    ground_truth_lambda_account: str | None = Field(
        None,
        pattern=r"^\d{12}$",
        description="Account of the built-in PRE-/ACS- Lambdas in regions not in the table",
    )
