"""The `ofa_fleet.v1` gRPC contract, generated from `protos/ofa_fleet/v1/*.proto`.

Every other module here is written by `make protos` and never edited by hand.
"""
