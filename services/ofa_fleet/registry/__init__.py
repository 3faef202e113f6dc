"""The registry: system of record for hardware profiles, fleets and devices.

`store` is the transport-agnostic core (plain Python over SQLAlchemy); `servicer` is the
thin gRPC layer over it; `access` says who may call what.
"""
