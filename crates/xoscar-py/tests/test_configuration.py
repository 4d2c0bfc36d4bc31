"""The runtime's settings reach Python processes through its environment variables
(XOSCAR_IDLE_TIMEOUT and the others), as xoscar's users set them; bad values are clear errors.
Each case runs a client process of its own: a process reads them once, on its first call."""

import os
import subprocess
import sys

from test_remote_process import start_server

CLIENT = """
import asyncio, json, sys
import xoscar_rs as xo

async def main():
    ref = xo.ActorRef(sys.argv[1], "far")
    try:
        await ref.add(1)
    except Exception as error:
        print(json.dumps({"error": type(error).__name__, "text": str(error)}))
        return
    first = xo.debug.caller_stats()
    await asyncio.sleep(1.5)
    idle = xo.debug.caller_stats()
    await ref.add(1)
    print(json.dumps({"first": first, "idle": idle, "again": xo.debug.caller_stats()}))

asyncio.run(main())
"""


def client(address, **env):
    import json

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), **env)
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, address], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_idle_timeout_is_read_from_the_environment():
    process, address = start_server()
    try:
        reaped = client(address, XOSCAR_IDLE_TIMEOUT="0.3")
        assert reaped["first"]["connects"] == 1
        assert reaped["idle"]["reaps"] == 1 and reaped["idle"]["open_connections"] == 0
        assert reaped["again"]["connects"] == 2
        kept = client(address)
        assert kept["idle"]["reaps"] == 0 and kept["idle"]["open_connections"] == 1
        assert kept["again"]["connects"] == 1
    finally:
        process.kill()
        process.wait(timeout=30)


def test_a_bad_setting_is_a_clear_error():
    process, address = start_server()
    try:
        refused = client(address, XOSCAR_IDLE_TIMEOUT="soon")
        assert refused["error"] == "XoscarError"
        assert "XOSCAR_IDLE_TIMEOUT" in refused["text"], refused
    finally:
        process.kill()
        process.wait(timeout=30)
