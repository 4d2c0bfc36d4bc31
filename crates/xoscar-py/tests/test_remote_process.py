"""A pool in another Python process (not a sub pool), called over TCP by a process with no
pool of its own; its death is a clear error for the calls waiting on it."""

import asyncio
import os
import signal
import subprocess
import sys

import pytest

import xoscar_rs as xo

SERVER = """
import asyncio, sys
import xoscar_rs as xo
from actors import Counter

async def main():
    pool = await xo.create_actor_pool("127.0.0.1", 0)
    await xo.create_actor(Counter, 1, address=pool.external_address, uid="far")
    print(pool.external_address, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def start_server(**env):
    """A pool process with one Counter ("far") and its address."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), **env)
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True, env=env
    )
    address = process.stdout.readline().strip()
    if not address:
        process.kill()
        raise AssertionError("the server process printed no address")
    return process, address


@pytest.fixture
def server():
    """A pool process with one Counter ("far"); SIGKILLed at the end."""
    process, address = start_server()
    try:
        yield process, address
    finally:
        process.kill()
        process.wait(timeout=30)


async def test_a_pool_with_a_shared_secret_refuses_callers_without_it():
    # Calls carry pickles, which run code when loaded: a pool beyond one host needs the
    # secret (XOSCAR_AUTH_TOKEN), and a caller without it gets nothing through.
    process, address = start_server(XOSCAR_AUTH_TOKEN="a-secret-of-32-bytes-or-so-12345")
    try:
        with pytest.raises(xo.ServerClosed, match="auth"):
            await xo.actor_ref(address, "far")
    finally:
        process.kill()
        process.wait(timeout=30)


async def test_calls_reach_a_pool_in_another_process_over_tcp(server):
    process, address = server
    ref = await xo.actor_ref(address, "far")
    assert not isinstance(ref, xo.LocalActorRef)
    assert await ref.pid() == process.pid
    assert await ref.add(2) == 3
    results = await asyncio.gather(*(ref.add(1) for _ in range(200)))
    assert sorted(results) == list(range(4, 204))
    with pytest.raises(ValueError) as raised:
        await ref.fail("far")
    assert str(raised.value) == f"[address={address}, pid={process.pid}] far"


async def test_a_tell_to_a_pool_not_yet_dialled_stays_before_the_next_call(server):
    _, address = server
    ref = xo.ActorRef(address, "far")  # no lookup: the tell dials
    await ref.add.tell(5)
    assert await ref.get() == 6


async def test_a_call_waiting_on_a_killed_process_fails_as_server_closed(server):
    process, address = server
    ref = await xo.actor_ref(address, "far")
    waiting = asyncio.create_task(ref.sleep(60))
    await asyncio.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    with pytest.raises(xo.ServerClosed):
        await asyncio.wait_for(waiting, 30)
    with pytest.raises(xo.ServerClosed):
        await asyncio.wait_for(ref.add(1), 30)


def test_the_quickstart_runs():
    done = subprocess.run(
        [sys.executable, "-m", "xoscar_rs.examples.quickstart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "remote error: [address=" in done.stdout
    assert "has_actor = False" in done.stdout
