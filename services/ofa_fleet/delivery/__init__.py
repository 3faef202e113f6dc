"""Delivery: the model store, signed manifests and the service devices fetch models from.

Four parts, each importing only those before it: `store` (what delivery keeps),
`fleets` (the registry's fleets and devices, and each fleet's target model), `carbon`
(the ledger's totals and report), `reconcile` (keeping models current, rollouts,
metrics) and `serve` (the gRPC servicer). `rollout` holds the pure rollout rules and
`signing` the signing key; `service` wires them into one server.
"""
