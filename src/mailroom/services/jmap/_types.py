"""JMAP's data types (RFC 8620 §1.2–1.4) and the standard responses of §5."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

#: RFC 8620 §1.2: 1–255 characters of the URL-safe base64 alphabet.
JmapId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+$")]
#: An id, or ``#creationId`` naming an object created earlier in the same request.
IdOrRef = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^#?[A-Za-z0-9_-]+$")]
#: RFC 8620 §1.3: integers JSON carries exactly.
MAX_SAFE = 2**53 - 1
UnsignedInt = Annotated[int, Field(ge=0, le=MAX_SAFE)]
Int = Annotated[int, Field(ge=-MAX_SAFE, le=MAX_SAFE)]
State = Annotated[str, Field(min_length=1, max_length=64)]
PropertyName = Annotated[str, Field(min_length=1, max_length=128)]
#: A creation id in a /set ``create`` map.
CreationId = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+$")]


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class SetError(_Out):
    """RFC 8620 §5.3: why one create, update or destroy failed."""

    type: str
    description: str | None = None
    properties: list[str] | None = None
    #: ``alreadyExists`` (Email/import, Email/copy, Blob/copy)
    existingId: str | None = None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class GetResponse(_Out):
    accountId: str
    state: str
    items: list[dict[str, Any]] = Field(alias="list")
    notFound: list[str]


class ChangesResponse(_Out):
    accountId: str
    oldState: str
    newState: str
    hasMoreChanges: bool
    created: list[str]
    updated: list[str]
    destroyed: list[str]


class SetResponse(_Out):
    accountId: str
    oldState: str | None
    newState: str
    created: dict[str, dict[str, Any]] | None = None
    updated: dict[str, dict[str, Any] | None] | None = None
    destroyed: list[str] | None = None
    notCreated: dict[str, dict[str, Any]] | None = None
    notUpdated: dict[str, dict[str, Any]] | None = None
    notDestroyed: dict[str, dict[str, Any]] | None = None


class _Optional(_Out):
    """A response whose ``None`` fields are left out rather than sent as ``null``
    (``total`` only when asked for, ``limit`` only when the server cut it)."""

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class QueryResponse(_Optional):
    accountId: str
    queryState: str
    canCalculateChanges: bool
    position: int
    ids: list[str]
    total: int | None = None
    limit: int | None = None


class AddedItem(_Out):
    id: str
    index: int


class QueryChangesResponse(_Optional):
    accountId: str
    oldQueryState: str
    newQueryState: str
    total: int | None = None
    removed: list[str]
    added: list[AddedItem]


class Comparator(BaseModel):
    """RFC 8620 §5.5 sort comparator."""

    model_config = ConfigDict(extra="forbid")

    property: PropertyName
    isAscending: bool = True
    collation: str | None = Field(default=None, max_length=64)
    #: RFC 8621 §4.4.2: the keyword of ``hasKeyword`` sorts.
    keyword: str | None = Field(default=None, max_length=255)
