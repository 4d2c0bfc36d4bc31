"""A Python caller calls a Rust actor's remote messages by name, with protobuf bytes."""

import os
import subprocess

import pytest

import xoscar_rs as xo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
COUNTER = os.path.join(ROOT, "target", "debug", "examples", "rust_counter")


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def int64_field(value: int) -> bytes:
    """Field 1 (int64) of a protobuf message: Add { n } and the Int64Value reply alike."""
    return b"\x08" + varint(value) if value else b""


@pytest.fixture
def rust_pool():
    """The example Rust pool (built by cargo xtask python) with its Counter, SIGKILLed after."""
    if not os.path.exists(COUNTER):
        pytest.fail(f"{COUNTER} is missing: cargo build -p xoscar-py --example rust_counter")
    process = subprocess.Popen([COUNTER], stdout=subprocess.PIPE, text=True)
    try:
        yield process.stdout.readline().strip()
    finally:
        process.kill()
        process.wait(timeout=30)


async def test_a_rust_actor_answers_by_message_name(rust_pool):
    counter = xo.ActorRef(rust_pool, "counter")
    assert await xo.call_named(counter, "Add", int64_field(5)) == int64_field(5)
    assert await xo.call_named(counter, "Add", int64_field(300)) == int64_field(305)
    with pytest.raises(xo.errors.XoscarError) as raised:
        await xo.call_named(counter, "Subtract", int64_field(1))
    assert raised.value.kind == "no_handler"
    with pytest.raises(xo.errors.XoscarError) as raised:
        await xo.call_named(counter, "Add", b"\xff\xff")
    assert raised.value.kind == "bad_message"
    with pytest.raises(xo.ActorNotExist):
        await xo.call_named(xo.ActorRef(rust_pool, "nobody"), "Add", int64_field(1))


class Relay(xo.Actor):
    """A Python actor that calls a Rust actor of its own pool by message name."""

    def __init__(self, counter):
        self.counter = counter

    async def add(self, n):
        reply = await xo.call_named(self.counter, "Add", int64_field(n))
        return reply


@pytest.mark.parametrize("index", [0, 1])
async def test_rust_and_python_actors_live_in_one_pool(pool_with_subs, index):
    from xoscar_rs.allocate_strategy import ProcessIndex

    address = pool_with_subs.external_address
    # The suite's build registers the example Rust actor ("Counter") in every pool.
    counter = await xo.create_rust_actor(
        "Counter", int64_field(10), address=address, allocate_strategy=ProcessIndex(index)
    )
    relay = await xo.create_actor(
        Relay, counter, address=address, allocate_strategy=ProcessIndex(index)
    )
    assert counter.address == relay.address
    assert await relay.add(5) == int64_field(15)
    assert await xo.call_named(counter, "Add", int64_field(1)) == int64_field(16)
    assert await xo.has_actor(counter)
    await xo.destroy_actor(counter)
    assert not await xo.has_actor(counter)
    with pytest.raises(xo.errors.XoscarError) as raised:
        await xo.create_rust_actor("NoSuchType", address=address)
    assert raised.value.kind == "unknown_type"
