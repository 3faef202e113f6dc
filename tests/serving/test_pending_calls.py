"""A burst of calls the server cannot take up at once waits for it instead of being
refused: what a fleet reconnecting together needs (`channel_options.MAX_PENDING_CALLS`)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from grpc import aio

from ofa_fleet.serving.channel_options import CLIENT_OPTIONS, SERVER_OPTIONS

BURST = 3000
SEND_SECONDS = 1.5
METHOD = "/burst.Burst/Echo"


# A grpc.aio server in a process of its own whose first call holds its loop for a while,
# as a busy server's loop is held: calls arriving meanwhile wait in gRPC's queue.
SERVER = """
import asyncio, json, os, sys, time
import grpc
from grpc import aio

async def main():
    first = [True]

    async def echo(request, context):
        if first[0]:
            first[0] = False
            deadline = time.monotonic() + 30
            while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
                time.sleep(0.01)  # on purpose: the loop takes up no call meanwhile
        return request

    server = aio.server(options=[tuple(o) for o in json.loads(sys.argv[1])])
    handler = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("burst.Burst", {"Echo": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()

asyncio.run(main())
"""


@contextmanager
def busy_server(options: Sequence[tuple[str, int]], release: Path) -> Iterator[str]:
    """The server's first call holds its loop until `release` exists."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, json.dumps(list(options)), str(release)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield f"127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.kill()
        process.wait(10)


async def burst(address: str, release: Path) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    async with aio.insecure_channel(address, options=CLIENT_OPTIONS) as channel:
        call = channel.unary_unary(METHOD)
        await channel.channel_ready()
        first = asyncio.ensure_future(call(b"hold", timeout=60))
        await asyncio.sleep(0.2)  # the first call now holds the server's loop

        async def one() -> None:
            try:
                await call(b"x", timeout=60)
                code = "OK"
            except aio.AioRpcError as error:
                code = error.code().name
            outcomes[code] = outcomes.get(code, 0) + 1

        calls = [asyncio.ensure_future(one()) for _ in range(BURST)]
        await asyncio.sleep(SEND_SECONDS)  # every call sent, and waiting at the server
        release.touch()
        await asyncio.gather(first, *calls)
    return outcomes


@pytest.mark.integration
@pytest.mark.parametrize(
    ("options", "refused"),
    [((), True), (SERVER_OPTIONS, False)],
    ids=["grpc-defaults", "ours"],
)
def test_a_burst_waits_for_a_busy_server_instead_of_being_refused(
    options: Sequence[tuple[str, int]], refused: bool, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    with busy_server(options, release) as address:
        outcomes = asyncio.run(burst(address, release))
    assert sum(outcomes.values()) == BURST
    if refused:  # gRPC's own limit, which the options lift
        assert outcomes.get("OK", 0) < BURST, outcomes
    else:
        assert outcomes == {"OK": BURST}
