"""A main pool with sub pools (Python processes): placement, lookup, environment, calls."""

import asyncio
import os

import pytest

import xoscar_rs as xo
from actors import Counter, Extended
from xoscar_rs.allocate_strategy import (
    AddressSpecified,
    IdleLabel,
    MainPool,
    ProcessIndex,
    RandomLabel,
    RandomSubPool,
)


async def test_actors_are_placed_by_strategy_and_run_in_their_pools_process(pool_with_subs):
    address = pool_with_subs.external_address
    subs = pool_with_subs.sub_processes
    assert len(subs) == 2 and os.getpid() not in subs.values()
    main = await xo.create_actor(Counter, address=address, allocate_strategy=MainPool())
    assert main.address == address
    assert await main.pid() == os.getpid()
    for index, (sub_address, pid) in enumerate(subs.items(), start=1):
        ref = await xo.create_actor(
            Counter, address=address, allocate_strategy=ProcessIndex(index)
        )
        assert ref.address == sub_address
        assert await ref.pid() == pid
        assert await ref.env("XO_TEST_ENV") == ["first", "second"][index - 1]
        pinned = await xo.create_actor(
            Counter, address=address, allocate_strategy=AddressSpecified(sub_address)
        )
        assert pinned.address == sub_address
    random = await xo.create_actor(Counter, address=address, allocate_strategy=RandomSubPool())
    assert random.address in subs
    gpu = await xo.create_actor(Counter, address=address, allocate_strategy=RandomLabel("gpu"))
    assert gpu.address == list(subs)[0]


async def test_idle_label_takes_each_pool_once_then_has_no_slot(pool_with_subs):
    address = pool_with_subs.external_address
    taken = await xo.create_actor(Counter, address=address, allocate_strategy=IdleLabel("cpu"))
    assert taken.address == list(pool_with_subs.sub_processes)[1]
    with pytest.raises(xo.errors.NoIdleSlot):
        await xo.create_actor(Counter, address=address, allocate_strategy=IdleLabel("cpu"))
    await xo.destroy_actor(taken)
    again = await xo.create_actor(Counter, address=address, allocate_strategy=IdleLabel("cpu"))
    assert again.address == taken.address


async def test_a_sub_pools_actor_is_found_called_and_destroyed_through_the_main_pool(
    pool_with_subs,
):
    address = pool_with_subs.external_address
    ref = await xo.create_actor(
        Counter, 3, address=address, uid="in-sub", allocate_strategy=ProcessIndex(2)
    )
    found = await xo.actor_ref(address, "in-sub")
    assert found == ref and found.address != address
    assert await found.add(1) == 4
    assert await xo.has_actor(xo.ActorRef(address, "in-sub"))
    # Actors in different processes call each other with refs passed as arguments.
    other = await xo.create_actor(Counter, 10, address=address, allocate_strategy=ProcessIndex(1))
    assert await other.call_other(ref, 5) == 9
    await xo.destroy_actor(xo.ActorRef(address, "in-sub"))
    assert not await xo.has_actor(ref)


async def test_an_error_in_a_sub_pool_names_its_address_and_pid(pool_with_subs):
    ref = await xo.create_actor(
        Counter, address=pool_with_subs.external_address, allocate_strategy=ProcessIndex(1)
    )
    with pytest.raises(ValueError) as raised:
        await ref.fail("far away")
    assert raised.value.pid == await ref.pid()
    assert raised.value.address == ref.address


@pytest.mark.parametrize("index", [0, 1])
async def test_a_cancelled_call_returns_what_the_cancelled_method_answers(pool_with_subs, index):
    ref = await xo.create_actor(
        Counter, address=pool_with_subs.external_address, allocate_strategy=ProcessIndex(index)
    )
    started = asyncio.get_running_loop().time()
    task = asyncio.create_task(ref.sleep_or_answer(60))
    await asyncio.sleep(0.2)
    task.cancel()
    # As in xoscar: the method caught the cancel and answered; the caller gets the answer.
    assert await task == "cancelled, answered anyway"
    task = asyncio.create_task(ref.sleep(60))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ref.cancelled_count() == 2
    assert asyncio.get_running_loop().time() - started < 30


async def test_a_killed_sub_pool_comes_back_with_its_actors(pool_with_subs):
    import signal

    address = pool_with_subs.external_address
    ref = await xo.create_actor(
        Counter, 10, address=address, uid="survivor", allocate_strategy=ProcessIndex(1)
    )
    assert await ref.add(1) == 11
    old_pid = await ref.pid()
    os.kill(old_pid, signal.SIGKILL)
    # auto_recover="actor" (the default): restarted, the actor created again from its recipe.
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        try:
            if await ref.pid() != old_pid:
                break
        except (xo.ServerClosed, xo.ActorNotExist, xo.errors.XoscarError):
            pass
        assert asyncio.get_running_loop().time() < deadline, "the sub pool never came back"
        await asyncio.sleep(0.1)
    assert await ref.add(1) == 11  # a fresh actor: its state was lost with the process


async def test_through_the_runtime_a_serial_actor_runs_wrapped_async_methods_one_at_a_time(
    pool_with_subs,
):
    ref = await xo.create_actor(
        Extended, address=pool_with_subs.external_address, allocate_strategy=ProcessIndex(1)
    )
    assert await asyncio.gather(ref.step(1), ref.step(2), ref.step(3)) == [1, 2, 3]
    assert await ref.get_log() == [
        ("start", 1), ("end", 1), ("start", 2), ("end", 2), ("start", 3), ("end", 3)
    ]
    # A tell, then a call: in that order, through the runtime too.
    counter = await xo.create_actor(
        Counter, address=pool_with_subs.external_address, allocate_strategy=ProcessIndex(2)
    )
    for n in range(1, 20):
        await counter.add.tell(1)
        assert await counter.get() == n
