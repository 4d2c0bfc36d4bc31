"""buffer_ref and copy_to: bytes written into an actor's buffer by reference, in chunks."""

import asyncio
import pickle

import numpy as np
import pytest

import xoscar_rs as xo
from xoscar_rs.allocate_strategy import ProcessIndex


class Receiver(xo.Actor):
    def __init__(self):
        self.buffers = []

    def create_buffers(self, sizes):
        buffers = [np.zeros(size, dtype="u1").data for size in sizes]
        self.buffers.extend(buffers)
        return [xo.buffer_ref(self.address, buffer) for buffer in buffers]

    def checksums(self, refs):
        return [int(np.frombuffer(xo.BufferRef.get_buffer(ref), dtype="u1").sum()) for ref in refs]

    def drop_buffers(self):
        self.buffers.clear()


@pytest.mark.parametrize("index", [0, 1])
async def test_copies_land_in_the_actors_buffers(pool_with_subs, index):
    receiver = await xo.create_actor(
        Receiver, address=pool_with_subs.external_address, allocate_strategy=ProcessIndex(index)
    )
    sizes = [3 * (1 << 20) + 7, 1000, 1]
    refs = await receiver.create_buffers(sizes)
    # A reference travels inside messages and pickles.
    assert pickle.loads(pickle.dumps(refs[0])) == refs[0]
    rng = np.random.default_rng(7)
    datas = [rng.integers(0, 255, size=size, dtype="u1") for size in sizes]
    first = xo.copy_to([d.data for d in datas[:2]], refs[:2], block_size=1 << 20)
    second = xo.copy_to([datas[2].tobytes()], refs[2:])
    await asyncio.gather(first, second)
    assert await receiver.checksums(refs) == [int(d.sum()) for d in datas]


async def test_bad_copies_fail_clearly(pool_with_subs):
    receiver = await xo.create_actor(
        Receiver, address=pool_with_subs.external_address, allocate_strategy=ProcessIndex(1)
    )
    (ref,) = await receiver.create_buffers([10])
    with pytest.raises(ValueError):
        await xo.copy_to([], [])
    with pytest.raises(AssertionError):
        await xo.copy_to([b"x"], [ref], block_size=-1)
    with pytest.raises(xo.errors.XoscarError, match="longer than its target") as raised:
        await xo.copy_to([b"x" * 11], [ref])
    assert raised.value.kind == "buffer"
    # Once the actor lets its buffer go, writes find nothing.
    await receiver.drop_buffers()
    with pytest.raises(xo.errors.XoscarError):
        await xo.copy_to([b"x" * 10], [ref])
    with pytest.raises(TypeError):
        xo.buffer_ref(pool_with_subs.external_address, bytearray(4))
