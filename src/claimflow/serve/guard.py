"""The ASGI middleware in front of every route: the optional bearer token, the request-size bound and
the security headers of every answer (a Content-Security-Policy that lets the pages load nothing
from elsewhere, no MIME sniffing, no referrer, no framing by other sites).

Token: a request passes with ``Authorization: Bearer TOKEN``, or with the cookie the server sets
when a browser first opens a URL carrying ``?token=TOKEN`` (the URL ``claimflow serve --token``
prints; the page is then reloaded without the token in its address, as Jupyter does). The cookie is
``HttpOnly`` and ``SameSite=Strict``: another site's page cannot use it.

Size: a request body over ``max_body_bytes`` is answered 413 without being read further, whether
its ``Content-Length`` says so up front or a chunked body grows past the bound.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "claimflow_token"
API_PREFIXES = ("/v1/", "/openapi.json", "/static/")
"""Paths answered in JSON (or static files); every other path is a page and gets an HTML error."""


class _TooLarge(Exception):
    pass


def _is_api(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class Guard:
    def __init__(self, app: ASGIApp, *, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token is not None and not await self._authorized(scope, send):
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(scope, send)
            return
        await self._bounded(scope, receive, send)

    # --- the token -------------------------------------------------------------------------------

    def _matches(self, given: str | None) -> bool:
        return given is not None and self.token is not None and hmac.compare_digest(given.encode(), self.token)

    async def _authorized(self, scope: Scope, send: Send) -> bool:
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer ") and self._matches(auth[7:].strip()):
            return True
        cookies = _cookies(headers.get(b"cookie", b"").decode("latin-1"))
        if self._matches(cookies.get(COOKIE)):
            return True
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = next((v for k, v in query if k == "token"), None)
        if self._matches(given) and scope["method"] in ("GET", "HEAD"):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
            cookie = f"{COOKIE}={given}; Path=/; HttpOnly; SameSite=Strict"
            await _answer(
                send, 303, b"", b"text/plain", [(b"location", location.encode()), (b"set-cookie", cookie.encode())]
            )
            return False
        if _is_api(scope["path"]):
            body = json.dumps(
                {
                    "error": "Unauthorized",
                    "message": "this claimflow server needs its token: send 'Authorization: Bearer TOKEN'",
                }
            ).encode()
            await _answer(send, 401, body, b"application/json", [(b"www-authenticate", b"Bearer")])
        else:
            page = (
                b"<!doctype html><meta charset='utf-8'><title>claimflow: token needed</title>"
                b"<h1>This claimflow server needs its token</h1><p>Open the address <code>claimflow serve</code> "
                b"printed when it started (it ends in <code>?token=...</code>).</p>"
            )
            await _answer(send, 401, page, b"text/html; charset=utf-8", [(b"www-authenticate", b"Bearer")])
        return False

    # --- the size bound --------------------------------------------------------------------------

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    over = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # whatever the app makes of the cut-off body, the answer is 413
            if message["type"] == "http.response.start":
                started = True
                message = _with_security_headers(message, scope["path"])
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, counting_receive, guarded_send)
        if over and not started:
            await self._too_large(scope, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        message = (
            f"the request body is over this server's limit of {self.max_body_bytes} bytes: "
            "send fewer or shorter evidence sentences, or start the server with a larger --max-body-bytes"
        )
        body = json.dumps({"error": "RequestTooLargeError", "message": message}).encode()
        await _answer(send, 413, body, b"application/json", [(b"connection", b"close")])


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
"""The pages' Content-Security-Policy: scripts and everything else from this server only (the A/B
report's plots are data: images; the bars' widths are style attributes)."""
NO_CSP_PATHS = ("/docs/swagger",)
"""Swagger UI loads its script and styles from a CDN: that page alone goes without the policy."""


def _with_security_headers(message: Message, path: str) -> Message:
    headers = list(message.get("headers") or [])
    present = {name.lower() for name, _ in headers}
    extra = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"SAMEORIGIN"),
    ]
    if path not in NO_CSP_PATHS:
        extra.append((b"content-security-policy", CSP.encode()))
    headers += [(name, value) for name, value in extra if name not in present]
    return {**message, "headers": headers}


def _cookies(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out[name] = value
    return out


async def _answer(send: Send, status: int, body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
