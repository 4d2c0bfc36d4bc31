"""`@xo.generator`: items streamed with flow control; errors, early drops, other processes."""

import asyncio
import gc

import pytest

import xoscar_rs as xo
from actors import Producer, eventually
from xoscar_rs.allocate_strategy import ProcessIndex


@pytest.mark.parametrize("in_sub_pool", [False, True])
async def test_items_arrive_in_order_and_an_error_ends_the_stream(pool_with_subs, in_sub_pool):
    strategy = ProcessIndex(1 if in_sub_pool else 0)
    producer = await xo.create_actor(
        Producer, address=pool_with_subs.external_address, allocate_strategy=strategy
    )
    assert [x async for x in await producer.count(2000)] == list(range(2000))
    assert [x async for x in await producer.blocking(5)] == [0, 1, 4, 9, 16]
    seen = []
    with pytest.raises(KeyError, match="generator broke"):
        async for x in await producer.fails_after(3):
            seen.append(x)
    assert seen == [0, 1, 2]
    await eventually(lambda: _none_left(producer))


async def _none_left(producer):
    return await producer.live_generators() == 0


@pytest.mark.parametrize("in_sub_pool", [False, True])
async def test_a_slow_consumer_holds_the_producer_back_and_dropping_it_stops_it(
    pool_with_subs, in_sub_pool
):
    strategy = ProcessIndex(1 if in_sub_pool else 0)
    producer = await xo.create_actor(
        Producer, address=pool_with_subs.external_address, allocate_strategy=strategy
    )
    items = await producer.count()  # endless
    assert [await items.__anext__() for _ in range(3)] == [0, 1, 2]
    await asyncio.sleep(0.3)
    # Bounded by the credit window (16 packs of up to 64 items) and the packs in hand.
    ahead = await producer.produced_so_far()
    assert 3 <= ahead <= 1300, ahead
    await asyncio.sleep(0.3)
    assert await producer.produced_so_far() == ahead, "the producer ran on unread"
    del items
    gc.collect()
    await eventually(lambda: _none_left(producer))


async def test_an_actor_keeps_a_bounded_number_of_unconsumed_generators(pool_with_subs):
    from xoscar_rs._actor import MAX_GENERATORS

    producer = await xo.create_actor(Producer, address=pool_with_subs.external_address)
    local = await xo.actor_ref(producer)
    kept = [await local.count(1) for _ in range(MAX_GENERATORS + 5)]
    assert await producer.live_generators() == MAX_GENERATORS
    # The newest still serve; the oldest were closed and forgotten.
    assert [x async for x in kept[-1]] == [0]
    with pytest.raises(RuntimeError, match="No iterator"):
        async for _ in kept[0]:
            pass
