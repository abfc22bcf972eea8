"""A small JMAP client over httpx (RFC 8620), as a third-party client would speak it."""

from __future__ import annotations

from typing import Any

import httpx

CORE = "urn:ietf:params:jmap:core"
MAIL = "urn:ietf:params:jmap:mail"
SUBMISSION = "urn:ietf:params:jmap:submission"
VACATION = "urn:ietf:params:jmap:vacationresponse"
USING = [CORE, MAIL]
#: Methods without an accountId argument (RFC 8620 §7.2).
NO_ACCOUNT = "PushSubscription/"


class MethodFailed(AssertionError):
    def __init__(self, name: str, args: dict[str, Any]) -> None:
        super().__init__(f"{name} failed: {args}")
        self.args_ = args


class JmapClient:
    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.http = http
        self.headers = headers
        self._session: dict[str, Any] | None = None

    async def session(self) -> dict[str, Any]:
        r = await self.http.get("/.well-known/jmap", headers=self.headers)
        assert r.status_code == 200, r.text
        self._session = r.json()
        return self._session

    @property
    def account_id(self) -> str:
        assert self._session is not None, "call session() first"
        return str(self._session["primaryAccounts"][MAIL])

    @property
    def api_path(self) -> str:
        assert self._session is not None
        return httpx.URL(self._session["apiUrl"]).path

    async def post(self, body: Any) -> httpx.Response:
        path = self.api_path if self._session else "/jmap/api"
        return await self.http.post(path, json=body, headers=self.headers)

    async def request(
        self, calls: list[list[Any]], using: list[str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        r = await self.post({"using": using or USING, "methodCalls": calls, **extra})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def call(self, name: str, args: dict[str, Any], using: list[str] | None = None) -> dict[str, Any]:
        """One method call; its response arguments (MethodFailed on an error response)."""
        if "accountId" not in args and self._session is not None and not name.startswith(NO_ACCOUNT):
            args = {"accountId": self.account_id, **args}
        body = await self.request([[name, args, "c0"]], using)
        [[answered, result, call_id]] = body["methodResponses"][:1]
        assert call_id == "c0"
        if answered == "error":
            raise MethodFailed(name, result)
        assert answered == name
        return dict(result)

    async def error(self, name: str, args: dict[str, Any], using: list[str] | None = None) -> dict[str, Any]:
        """One method call that must fail; the error's arguments."""
        if "accountId" not in args and self._session is not None and not name.startswith(NO_ACCOUNT):
            args = {"accountId": self.account_id, **args}
        body = await self.request([[name, args, "c0"]], using)
        answered, result, _ = body["methodResponses"][0]
        assert answered == "error", result
        return dict(result)
