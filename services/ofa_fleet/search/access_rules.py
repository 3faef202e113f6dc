"""Who may call each SearchService method (see `serving.access` for the checks; the
operations it serves beside it: `serving.long_running`).

Specializing costs a cluster's CPU for seconds, so only operators (and the delivery
service, which holds the operator token) may ask for it.
"""

from __future__ import annotations

from ofa_fleet.serving.access import AccessRule, Role, rules_for

SERVICE = "ofa_fleet.v1.SearchService"

RULES = rules_for(
    SERVICE,
    {
        "Specialize": AccessRule.of(Role.OPERATOR),
        "GetSupernet": AccessRule.of(Role.OPERATOR),
    },
)
