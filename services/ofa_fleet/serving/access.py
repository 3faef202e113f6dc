"""Who may make which call: principals, per-method access rules and the authenticator.

Every call carries ``authorization: Bearer <token>``. The authenticator turns the token
into a principal (operator, device, or a fleet's enrolment); the rule for the method says
which kinds of principal it admits and, for device calls, which request field must name
the calling device itself. Rules live beside each service, the checks here, once.
"""

from __future__ import annotations

import contextvars
import enum
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ofa_fleet.contract.tokens import DEVICE_PREFIX, ENROLMENT_PREFIX
from ofa_fleet.errors import PermissionDeniedError, UnauthenticatedError


class Role(enum.Enum):
    OPERATOR = "operator"
    DEVICE = "device"
    ENROLMENT = "enrolment"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller; `subject` is the device id or the enrolling fleet."""

    role: Role
    subject: str = ""

    def describe(self) -> str:
        return f"{self.role.value}:{self.subject}" if self.subject else self.role.value


@dataclass(frozen=True)
class AccessRule:
    """Which roles may call a method; a device may only name itself in `own_field`."""

    roles: frozenset[Role]
    own_field: str = ""

    @classmethod
    def of(cls, *roles: Role, own_field: str = "") -> AccessRule:
        return cls(frozenset(roles), own_field)


PUBLIC_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection")


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | None:
        """The principal a bearer token stands for, or None when nobody issued it."""


class OperatorAuthenticator:
    """Recognises the operator token, compared in constant time; others are asked next."""

    def __init__(self, operator_token: str, others: Sequence[Authenticator] = ()) -> None:
        if len(operator_token) < 16:
            raise ValueError("the operator token must be at least 16 characters long")
        self._operator = operator_token.encode()
        self._others = tuple(others)

    async def authenticate(self, token: str) -> Principal | None:
        if hmac.compare_digest(token.encode(), self._operator):
            return Principal(Role.OPERATOR)
        for other in self._others:
            principal = await other.authenticate(token)
            if principal is not None:
                return principal
        return None


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "ofa_fleet_principal", default=None
)


def current_principal() -> Principal:
    """The caller of the RPC being served (set by the interceptor around each call)."""
    principal = _current.get()
    if principal is None:
        raise RuntimeError("current_principal() called outside an authorized RPC")
    return principal


def set_current_principal(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _current.set(principal)


def token_role(token: str) -> Role | None:
    """The kind of token its prefix claims (device or enrolment); None for any other."""
    if token.startswith(DEVICE_PREFIX):
        return Role.DEVICE
    if token.startswith(ENROLMENT_PREFIX):
        return Role.ENROLMENT
    return None


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The token from ``authorization: Bearer <token>``; UNAUTHENTICATED when absent."""
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        raise UnauthenticatedError("the authorization metadata must read 'Bearer <token>'")
    raise UnauthenticatedError(
        "this call needs 'authorization: Bearer <token>' metadata (the operator token, a "
        "fleet enrolment token or a device token)"
    )


def authorize(method: str, rule: AccessRule, principal: Principal, request: object) -> None:
    """PERMISSION_DENIED unless `rule` admits `principal` for this request."""
    name = method.rsplit("/", 1)[-1]
    if principal.role not in rule.roles:
        allowed = " or ".join(sorted(r.value for r in rule.roles))
        raise PermissionDeniedError(
            f"{name} needs the {allowed} token; this call carries "
            f"{_article(principal.role.value)} {principal.role.value} token"
        )
    if principal.role is Role.DEVICE and rule.own_field:
        named = getattr(request, rule.own_field, None)
        if named != principal.subject:
            raise PermissionDeniedError(
                f"a device token may only be used for its own record: {rule.own_field} "
                f"{named!r} is not the calling device"
            )


def rules_for(service: str, rules: Mapping[str, AccessRule]) -> dict[str, AccessRule]:
    """Method path (``/pkg.Service/Method``) to rule, from method names to rules."""
    return {f"/{service}/{method}": rule for method, rule in rules.items()}


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
