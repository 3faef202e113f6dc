"""Who may call each RegistryService method (see `serving.access` for the checks)."""

from __future__ import annotations

from ofa_fleet.serving.access import AccessRule, Role, rules_for

SERVICE = "ofa_fleet.v1.RegistryService"

_OPERATOR = AccessRule.of(Role.OPERATOR)
_OWN_DEVICE = AccessRule.of(Role.DEVICE, own_field="name")

RULES = rules_for(
    SERVICE,
    {
        "CreateProfile": _OPERATOR,
        "GetProfile": _OPERATOR,
        "ListProfiles": _OPERATOR,
        "UpdateProfile": _OPERATOR,
        "DeleteProfile": _OPERATOR,
        "CreateFleet": _OPERATOR,
        "GetFleet": _OPERATOR,
        "ListFleets": _OPERATOR,
        "UpdateFleet": _OPERATOR,
        "DeleteFleet": _OPERATOR,
        "RegisterDevice": AccessRule.of(Role.ENROLMENT),
        "Heartbeat": _OWN_DEVICE,
        "ReportStatus": _OWN_DEVICE,
        "SubmitLatencyTable": _OWN_DEVICE,
        "GetDevice": AccessRule.of(Role.OPERATOR, Role.DEVICE, own_field="name"),
        "WhoAmI": AccessRule.of(Role.DEVICE),
        "ListDevices": _OPERATOR,
        "DeleteDevice": _OPERATOR,
        "WatchChanges": _OPERATOR,
    },
)
