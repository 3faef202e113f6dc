"""Who may call each DeliveryService method (see `serving.access` for the checks; the
operations it serves beside it: `serving.long_running`)."""

from __future__ import annotations

from ofa_fleet.serving.access import AccessRule, Role, rules_for

SERVICE = "ofa_fleet.v1.DeliveryService"

_OPERATOR = AccessRule.of(Role.OPERATOR)
_OWN_DEVICE = AccessRule.of(Role.DEVICE, own_field="device")

RULES = rules_for(
    SERVICE,
    {
        "GetModelManifest": _OWN_DEVICE,
        # Content-addressed bytes that verify against a signed manifest: any device may
        # read any model by sha256, so caches between can serve them (see the proto).
        "ReadModel": AccessRule.of(Role.DEVICE, Role.OPERATOR),
        "WatchModel": _OWN_DEVICE,
        # Devices fetch it to verify manifests; operators to pin it in their tooling.
        "GetSigningKey": AccessRule.of(Role.DEVICE, Role.OPERATOR),
        "GetLatencyMeasurement": _OWN_DEVICE,
        "ListModels": _OPERATOR,
        "GetProfileModels": _OPERATOR,
        "PinFleet": _OPERATOR,
        "Respecialize": _OPERATOR,
        "GetCarbonLedger": _OPERATOR,
    },
)
