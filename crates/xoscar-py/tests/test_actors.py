"""Actors in one pool: create, call, tell, refs, errors, locking, hooks, destroy."""

import asyncio
import pickle

import pytest

import xoscar_rs as xo
from actors import Concurrent, Counter, Hooks, Unlocked, eventually


async def test_create_call_tell_and_destroy(pool):
    ref = await xo.create_actor(Counter, 5, address=pool.external_address, uid="counter")
    assert ref.uid == b"counter"
    assert ref.address == pool.external_address
    assert await ref.add(2) == 7
    await ref.add.tell(3)
    assert await ref.get() == 10
    assert await xo.has_actor(ref)
    await xo.destroy_actor(ref)
    assert not await xo.has_actor(ref)
    with pytest.raises(xo.ActorNotExist):
        await ref.get()
    with pytest.raises(xo.ActorNotExist):
        await xo.destroy_actor(ref)


async def test_generated_uids_are_unique_and_a_taken_uid_is_refused(pool):
    first = await xo.create_actor(Counter, address=pool.external_address)
    second = await xo.create_actor(Counter, address=pool.external_address)
    assert first.uid != second.uid
    await xo.create_actor(Counter, address=pool.external_address, uid="taken")
    with pytest.raises(xo.ActorAlreadyExist):
        await xo.create_actor(Counter, address=pool.external_address, uid="taken")


async def test_an_exception_reaches_the_caller_as_its_type_with_where_it_was_raised(pool):
    ref = await xo.create_actor(Counter, address=pool.external_address)
    with pytest.raises(ValueError, match="intent") as raised:
        await ref.fail("intent")
    assert str(raised.value).startswith(f"[address={pool.external_address}, pid=")
    assert raised.value.address == pool.external_address
    assert any("Remote traceback" in note for note in raised.value.__notes__)
    with pytest.raises(AttributeError):
        await ref.no_such_method()
    # The actor goes on.
    assert await ref.add(1) == 1


async def test_actor_ref_finds_an_actor_and_refuses_an_unknown_one(pool):
    ref = await xo.create_actor(Counter, address=pool.external_address, uid="found")
    for found in (
        await xo.actor_ref(pool.external_address, "found"),
        await xo.actor_ref(ref),
        await xo.actor_ref("found", address=pool.external_address),
        await xo.actor_ref(uid=b"found", address=pool.external_address),
    ):
        assert found == ref
        assert await found.add(1) >= 1
    with pytest.raises(xo.ActorNotExist):
        await xo.actor_ref(pool.external_address, "missing")
    with pytest.raises(ValueError):
        await xo.actor_ref(pool.external_address, "found", proxy="x")
    with pytest.raises(ValueError):
        await xo.actor_ref(address=pool.external_address)


async def test_a_ref_to_an_actor_of_this_process_calls_it_directly(pool):
    await xo.create_actor(Counter, address=pool.external_address, uid="local")
    local = await xo.actor_ref(pool.external_address, "local")
    assert isinstance(local, xo.LocalActorRef)
    assert await local.add(4) == 4
    # Errors are raised as they were (no address prefix), missing methods at once.
    with pytest.raises(ValueError, match="^plain$"):
        await local.fail("plain")
    with pytest.raises(AttributeError):
        local.no_such_method
    # Pickled and back in this process: still local; equal to a plain ref.
    again = pickle.loads(pickle.dumps(local))
    assert isinstance(again, xo.LocalActorRef)
    assert again == xo.ActorRef(pool.external_address, b"local")


async def test_a_ref_passed_to_another_actor_is_called_back(pool):
    first = await xo.create_actor(Counter, address=pool.external_address)
    second = await xo.create_actor(Counter, 10, address=pool.external_address)
    assert await first.call_other(second, 5) == 15


async def test_a_serial_actor_runs_one_method_at_a_time_in_the_order_sent(pool):
    ref = await xo.create_actor(Counter, address=pool.external_address)
    await asyncio.gather(ref.slow_add(1, 0.05), ref.slow_add(2, 0.01))
    assert await ref.get_log() == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]


async def test_no_lock_methods_and_stateless_actors_run_at_once(pool):
    unlocked = await xo.create_actor(Unlocked, address=pool.external_address)
    await asyncio.gather(unlocked.step(1, 0.1), unlocked.step(2, 0.05))
    assert await unlocked.get_log() == [1, 2, 4, 3]
    concurrent = await xo.create_actor(Concurrent, address=pool.external_address)
    results = await asyncio.gather(*(concurrent.work(0.1) for _ in range(4)))
    assert max(results) == 4


async def test_hooks_run_and_their_errors_reach_the_creator_and_destroyer(pool):
    address = pool.external_address
    ref = await xo.create_actor(Hooks, address=address, uid="hooks")
    assert await ref.was_created() == (address, b"hooks")
    with pytest.raises(ValueError, match="bad init"):
        await xo.create_actor(Hooks, "init", address=address, uid="init")
    with pytest.raises(TypeError, match="bad post_create"):
        await xo.create_actor(Hooks, "post_create", address=address, uid="post")
    # A failed create leaves nothing behind: the uid is free, and __pre_destroy__ never ran.
    assert not await xo.has_actor(xo.ActorRef(address, "post"))
    assert "post_create" not in Hooks.destroyed
    failing = await xo.create_actor(Hooks, "pre_destroy", address=address)
    with pytest.raises(RuntimeError, match="bad pre_destroy"):
        await xo.destroy_actor(failing)
    assert not await xo.has_actor(failing)


def _cancelled_once(ref):
    async def check():
        return await ref.cancelled_count() == 1

    return check


async def test_a_hook_error_saying_some_actor_is_missing_still_destroys(pool):
    ref = await xo.create_actor(Hooks, "pre_destroy_calls_nobody", address=pool.external_address)
    with pytest.raises(xo.ActorNotExist):
        await xo.destroy_actor(ref)
    assert not await xo.has_actor(ref)


async def test_cancelling_a_task_in_wait_for_cancels_the_call(pool):
    ref = await xo.create_actor(Counter, address=pool.external_address)
    task = asyncio.create_task(xo.wait_for(ref.sleep(30), timeout=60))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(_cancelled_once(ref), what="the call was never cancelled")


async def test_cancelling_the_caller_cancels_the_method_where_it_waits(pool):
    ref = await xo.create_actor(Counter, address=pool.external_address)
    task = asyncio.create_task(ref.sleep(30))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(_cancelled_once(ref), what="the method was never cancelled")
    # The actor goes on with its next message.
    assert await ref.add(1) == 1


async def test_wait_for_gives_up_at_its_timeout(pool):
    ref = await xo.create_actor(Counter, address=pool.external_address)
    started = asyncio.get_running_loop().time()
    with pytest.raises(asyncio.TimeoutError):
        await xo.wait_for(ref.sleep(30), timeout=0.2)
    assert asyncio.get_running_loop().time() - started < 10


async def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError):
        await xo.create_actor_pool("127.0.0.1", -1)
    with pytest.raises(ValueError):
        await xo.create_actor_pool("127.0.0.1", 1, labels=["only-one"])
    with pytest.raises(ValueError):
        await xo.create_actor_pool("not an address:x", 0)
    with pytest.raises(ValueError):
        await xo.create_actor(Counter)
    with pytest.raises(ValueError):
        await xo.create_actor(Counter, address="nowhere:")
    with pytest.raises(TypeError):
        xo.ActorRef("127.0.0.1:1", 5)


async def test_join_waits_for_the_stop():
    pool = await xo.create_actor_pool("127.0.0.1", 0)
    with pytest.raises(asyncio.TimeoutError):
        await pool.join(timeout=0.1)
    await pool.stop()
    await pool.join(timeout=5)
    assert pool.stopped
