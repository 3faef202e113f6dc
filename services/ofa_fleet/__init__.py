"""OFA Fleet: train one elastic network once, give every kind of device its own subnet.

One process-wide setting is made here, before any module imports gRPC, because gRPC reads
it once when it starts: its fork handlers are off. With them on, every fork() of a process
that has used gRPC waits for gRPC's threads to settle, and can wait forever: `ofa-fleet
demo` hung starting its third server (a fork inside gRPC's prepare-fork handler, after the
health checks of the first two), and Ray's raylet start hung the same way in the tests.
No process here uses gRPC in a forked child without exec'ing first, which is all the
handlers are for. An explicit GRPC_ENABLE_FORK_SUPPORT in the environment still wins.
"""

import os

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
