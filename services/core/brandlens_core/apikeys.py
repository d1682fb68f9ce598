"""API keys of the REST API: random bearer tokens, stored only as their SHA-256.

A key belongs to a *tenant*: it sees the projects its tenant owns (and the jobs,
results and reports of those projects) and nothing else; another tenant's
project answers exactly like a project that does not exist. An *admin* key sees
every project, including those made with the CLI (which have no owner).

Keys are 32 random bytes, so a plain SHA-256 is enough to store them (a slow
password hash protects guessable secrets; these are not guessable). The table
is keyed by the hash, so checking a key is one GetItem.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from brandlens_core.aws import Client, error_code
from brandlens_core.dynamo import from_item, to_item
from brandlens_core.events import utc_now

PREFIX = "blk_"
KEY_RE = re.compile(r"^blk_[A-Za-z0-9_-]{43}$")
TENANT_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class ApiKey(BaseModel):
    """A stored key: never the secret, only its hash and a short id to name it by."""

    model_config = ConfigDict(extra="ignore")

    key_hash: str
    key_id: str = Field(description="the first 8 hex digits of the hash: shown, never secret")
    name: str = Field(min_length=1, max_length=100)
    tenant: str | None = Field(default=None, pattern=TENANT_RE.pattern)
    admin: bool = False
    created_at: datetime = Field(default_factory=utc_now)
    revoked_at: datetime | None = None

    def can_see(self, owner: str | None) -> bool:
        """Whether this key may see a project owned by ``owner``."""
        return self.admin or (owner is not None and owner == self.tenant)


class ApiKeyError(ValueError):
    pass


class ApiKeyStore:
    def __init__(self, dynamodb: Client, table_name: str) -> None:
        self._db = dynamodb
        self.table = table_name

    async def create(
        self, name: str, *, tenant: str | None = None, admin: bool = False
    ) -> tuple[str, ApiKey]:
        """A new key: returns the secret (shown once, never stored) and the stored record."""
        if not admin and tenant is None:
            raise ApiKeyError("a key needs a tenant unless it is an admin key")
        if tenant is not None and not TENANT_RE.match(tenant):
            raise ApiKeyError(
                f"tenant {tenant!r} is invalid: use 1-63 lowercase letters, digits and '-'"
            )
        secret = PREFIX + secrets.token_urlsafe(32)
        digest = hash_key(secret)
        key = ApiKey(key_hash=digest, key_id=digest[:8], name=name, tenant=tenant, admin=admin)
        await self._db.put_item(
            TableName=self.table,
            Item=to_item(key.model_dump(mode="json", exclude_none=True)),
            ConditionExpression="attribute_not_exists(key_hash)",
        )
        return secret, key

    async def check(self, secret: str) -> ApiKey | None:
        """The live key ``secret`` names, or None (malformed, unknown or revoked)."""
        if not KEY_RE.match(secret):
            return None
        got = await self._db.get_item(
            TableName=self.table, Key={"key_hash": {"S": hash_key(secret)}}
        )
        if "Item" not in got:
            return None
        key = ApiKey.model_validate(from_item(got["Item"]))
        return None if key.revoked_at is not None else key

    async def list(self) -> list[ApiKey]:
        keys: list[ApiKey] = []
        paginator = self._db.get_paginator("scan")
        async for page in paginator.paginate(TableName=self.table):
            keys.extend(ApiKey.model_validate(from_item(i)) for i in page.get("Items", []))
        return sorted(keys, key=lambda k: k.created_at)

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke the key whose id (or hash) starts with ``key_id``; exactly one must match."""
        matches = [k for k in await self.list() if k.key_hash.startswith(key_id.lower())]
        if len(matches) != 1:
            raise ApiKeyError(
                f"{len(matches)} keys have an id starting with {key_id!r}; give exactly one"
            )
        key = matches[0]
        when = utc_now()
        try:
            await self._db.update_item(
                TableName=self.table,
                Key={"key_hash": {"S": key.key_hash}},
                UpdateExpression="SET revoked_at = :t",
                ConditionExpression="attribute_exists(key_hash)",
                ExpressionAttributeValues={":t": {"S": when.isoformat()}},
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise ApiKeyError(f"key {key_id!r} disappeared") from None
            raise
        return key.model_copy(update={"revoked_at": when})


def describe(key: ApiKey) -> dict[str, Any]:
    """What a listing shows of a key."""
    return {
        "key_id": key.key_id,
        "name": key.name,
        "tenant": key.tenant,
        "admin": key.admin,
        "created_at": key.created_at.isoformat(),
        "revoked": key.revoked_at is not None,
    }
