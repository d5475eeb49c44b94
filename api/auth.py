"""Bearer-key authentication: ``Authorization: Bearer <key>`` against every configured key.

``KeyChecker`` compares in constant time against each key (``hmac.compare_digest``, all keys
always compared, so timing tells neither which key nor how much of it matched). The
middleware guards HTTP requests on the protected paths; WebSocket scopes pass through, for the
WebSocket endpoint authenticates its own handshake (query token, first message or header) with
the same ``KeyChecker``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import ApiError, ErrorCode
from api.responses import JsonResponse

_BEARER = b"bearer"
REALM = 'Bearer realm="tradingbrain"'


class KeyChecker:
    """Tells whether a presented key is one of the configured API keys."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys or not all(keys):
            raise ValueError("at least one non-empty API key is required")
        self._keys = [key.encode() for key in keys]

    def check(self, presented: bytes | str | None) -> bool:
        if not presented:
            return False
        candidate = presented.encode() if isinstance(presented, str) else presented
        matched = False
        for key in self._keys:  # no early exit: every key costs the same
            matched |= hmac.compare_digest(candidate, key)
        return matched

    def check_authorization(self, header: bytes | None) -> bool:
        """Whether an ``Authorization`` header value carries a valid bearer key."""
        token = bearer_token(header)
        return token is not None and self.check(token)


def bearer_token(header: bytes | None) -> bytes | None:
    """The token of ``Bearer <token>`` (scheme case-insensitive), else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != _BEARER:
        return None
    token = token.strip()
    return token or None


def unauthorized(presented: bool) -> ApiError:
    """The 401 for a missing key (``presented`` False) or a wrong one."""
    if presented:
        challenge = f'{REALM}, error="invalid_token"'
        message = "the API key is not valid"
    else:
        challenge = REALM
        message = "an API key is required: send Authorization: Bearer <key>"
    return ApiError(ErrorCode.UNAUTHORIZED, message, headers={"WWW-Authenticate": challenge})


class BearerAuthMiddleware:
    """Refuses HTTP requests to protected paths that do not carry a valid bearer key."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        checker: KeyChecker,
        protected: Callable[[str], bool],
        render: Callable[[ApiError], JsonResponse],
    ) -> None:
        self.app = app
        self.checker = checker
        self.protected = protected
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        if self.checker.check_authorization(header):
            await self.app(scope, receive, send)
            return
        response = self.render(unauthorized(presented=header is not None))
        await response(scope, receive, send)
