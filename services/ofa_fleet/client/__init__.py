"""The typed Python client of OFA Fleet's services (see `fleet_client`), and the settings
and contexts it shares with the `ofa-fleet` command line.

Kept free of server code: it imports the generated protobuf modules, the serving clients
and gRPC, never torch, Ray or SQLAlchemy.
"""

from ofa_fleet.client.fleet_client import AsyncFleetClient, FleetClient
from ofa_fleet.client.search_client import SearchClient
from ofa_fleet.client.settings import ClientSettings

__all__ = ["AsyncFleetClient", "ClientSettings", "FleetClient", "SearchClient"]
