"""Who may call each SearchService method, and each method of the operations it serves
beside it (see `serving.access` for the checks).

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

# Its searches as operations (`search.operations`): an operator's, like Specialize.
OPERATIONS_SERVICE = "google.longrunning.Operations"
OPERATIONS_RULES = rules_for(
    OPERATIONS_SERVICE,
    {
        method: AccessRule.of(Role.OPERATOR)
        for method in (
            "GetOperation",
            "ListOperations",
            "WaitOperation",
            "CancelOperation",
            "DeleteOperation",
        )
    },
)
