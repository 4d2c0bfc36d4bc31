"""Python actors inside a pool: the base classes users subclass, and what the runtime calls
(on the pool's asyncio loop) to build an actor, run its methods and destroy it.

A serial ``Actor`` runs one method body at a time under an ``asyncio.Lock`` held across its
awaits, as xoscar's does; ``@no_lock`` methods and ``StatelessActor`` skip it. Hooks run
outside the lock. The runtime (Rust) hands every call over in arrival order, so the lock's
FIFO queue keeps a caller's calls in the order sent.
"""

import asyncio
import inspect
import os
import threading
import weakref

from ._serialize import dumps, dumps_error, loads
from .errors import Return

NO_LOCK_ATTRIBUTE_HINT = "__XOSCAR_ACTOR_METHOD_NO_LOCK__"
CALL_METHOD_DEFAULT = 0
CALL_METHOD_BATCH = 1
OK = b"\x00"
RAISED = b"\x01"
# A generator's pull that found no more items.
END = b"\x02"
# The most generators one actor keeps for consumers at once (see _keep_generator).
MAX_GENERATORS = 4096

# Every actor living in a pool of this process, by (address, uid as bytes): what the local
# fast path of refs reaches. An actor is here from before its __post_create__ until destroyed.
_local_actors: dict = {}


def forget_local_actors(address: str):
    """Forgets the actors of the pool at ``address`` (stopped or gone: refs no longer reach
    them here)."""
    for key in [key for key in _local_actors if key[0] == address]:
        del _local_actors[key]


def no_lock(func):
    """Marks a method to run without the actor's lock (concurrently with others)."""
    setattr(func, NO_LOCK_ATTRIBUTE_HINT, True)
    return func


# Actor type -> {method name: whether the method itself carries the no_lock hint}, bounded
# and weak as _plain_methods below.
_no_lock_methods = weakref.WeakKeyDictionary()


def _runs_unlocked(actor, method_name, method) -> bool:
    """``_has_no_lock_hint`` with the method's own hint cached per actor type (the look-up
    misses twice for a plain method, which cost a tenth of a local call)."""
    if NO_LOCK_ATTRIBUTE_HINT in actor.__dict__:
        return True
    cls = type(actor)
    known = _no_lock_methods.get(cls)
    if known is None:
        known = _no_lock_methods[cls] = {}
    hinted = known.get(method_name)
    if hinted is None:
        hinted = _has_no_lock_hint(method)
        if method_name not in actor.__dict__:
            known[method_name] = hinted
    return hinted


def _has_no_lock_hint(method) -> bool:
    if getattr(method, NO_LOCK_ATTRIBUTE_HINT, False):
        return True
    owner = getattr(method, "__self__", None)
    return owner is not None and getattr(type(owner), NO_LOCK_ATTRIBUTE_HINT, False) or (
        owner is not None and NO_LOCK_ATTRIBUTE_HINT in getattr(owner, "__dict__", ())
    )


class _FakeLock:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


class _BaseActor:
    """What both actor kinds share: uid, address, ref, lifecycle hooks."""

    def __new__(cls, *args, **kwargs):
        actor = super().__new__(cls)
        # Set before __init__, so a subclass that skips super().__init__() still has them.
        actor._lock = cls._create_lock()
        actor._generators = {}
        actor._pre_destroyed = False
        # Calls from the runtime handed to the loop as tasks and not yet done.
        actor._xo_queued = 0
        actor._uid = None
        actor._address = None
        return actor

    @classmethod
    def _create_lock(cls):
        return asyncio.Lock()

    @classmethod
    def default_uid(cls):
        """The class's name: a uid to pass to ``create_actor`` for a one-per-pool actor."""
        return cls.__name__

    @property
    def uid(self) -> bytes:
        """The actor's uid (bytes, as in xoscar); set once it is created."""
        return self._uid

    @uid.setter
    def uid(self, uid):
        self._uid = uid

    @property
    def address(self) -> str:
        """The address of the pool the actor lives in; set once it is created."""
        return self._address

    @address.setter
    def address(self, address):
        self._address = address

    def ref(self):
        """A ref to this actor (a local one: calls through it skip the runtime)."""
        from ._ref import create_actor_ref

        return create_actor_ref(self._address, self._uid)

    async def __post_create__(self):
        """Runs once after ``__init__``, before any message; may be sync or async."""

    async def __pre_destroy__(self):
        """Runs once when the actor is destroyed; may be sync or async."""

    async def __xoscar_pre_destroy__(self):
        """Runs ``__pre_destroy__`` once, before the runtime destroys the actor (so that the
        hook may still call the actor through any ref, as in xoscar); its error raised."""
        if getattr(self, "_pre_destroyed", False):
            return
        self._pre_destroyed = True
        await _maybe_await(self.__pre_destroy__())

    async def __xoscar_post_created__(self):
        """Waits for ``__post_create__`` (the creator does); its error raised."""
        await self._post_create

    def _keep_generator(self, generator_uid, generator):
        """Keeps a generator for its consumer; past ``MAX_GENERATORS`` the oldest kept is
        closed and forgotten (its consumer, if any, then gets an error), so that callers
        that never consume cannot grow an actor without bound."""
        while len(self._generators) >= MAX_GENERATORS:
            oldest = next(iter(self._generators))
            self.__xoscar_destroy_generator__(oldest)
        self._generators[generator_uid] = generator

    def __xoscar_destroy_generator__(self, generator_uid):
        """Forgets (and closes) a generator its consumer is done with."""
        generator = self._generators.pop(generator_uid, None)
        if inspect.isgenerator(generator):
            generator.close()
        elif inspect.isasyncgen(generator):
            asyncio.ensure_future(generator.aclose())


no_lock(_BaseActor.__xoscar_post_created__)
no_lock(_BaseActor.__xoscar_pre_destroy__)
no_lock(_BaseActor.__xoscar_destroy_generator__)


class Actor(_BaseActor):
    """A serial actor: one method body runs at a time (``@no_lock`` methods excepted)."""


class StatelessActor(_BaseActor):
    """A concurrent actor: its methods run at once, with no lock."""

    @classmethod
    def _create_lock(cls):
        return _FakeLock()


async def _maybe_await(value):
    if inspect.isawaitable(value):
        return await value
    return value


def _pending(item) -> bool:
    return inspect.isawaitable(item) or inspect.isasyncgen(item)


async def handle_result(result, actor=None):
    """What a method's result becomes, outside the lock: an awaitable is awaited, a tuple's
    awaitables (and async generators) are awaited together, an async generator runs as
    xoscar's promise-style method (below)."""
    if inspect.isasyncgen(result):
        return await _run_promise(result, actor)
    if inspect.isawaitable(result):
        return await result
    if type(result) is tuple and any(_pending(item) for item in result):
        tasks = [asyncio.ensure_future(handle_result(item, actor)) for item in result]
        try:
            return tuple(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
    return result


async def _run_promise(generator, actor):
    """xoscar's promise-style method: an async generator whose every ``yield`` hands out an
    awaitable, awaited outside the actor's lock, and gets its result (or exception) back;
    each step between yields holds the lock. ``raise xo.Return(value)`` ends it with
    ``value``."""
    lock = actor._lock if actor is not None else _FakeLock()
    sent, thrown = None, None
    while True:
        try:
            async with lock:
                if thrown is None:
                    pending = await generator.asend(sent)
                else:
                    pending = await generator.athrow(thrown)
        except StopAsyncIteration:
            return None
        except Return as returned:
            return returned.value
        try:
            sent, thrown = await handle_result(pending, actor), None
        except BaseException as error:  # noqa: BLE001 - thrown into the generator
            sent, thrown = None, error


async def call_method(actor, method_name, call_method, args, kwargs):
    """Runs one call (or a batch) of ``method_name`` on ``actor`` as xoscar does."""
    method = getattr(actor, method_name)
    if call_method == CALL_METHOD_BATCH:
        # A batch's args are (args_list, kwargs_list): one call with both lists.
        method = method.call_with_lists
        args, kwargs = (args, kwargs), {}
        unlocked = _has_no_lock_hint(method)
    else:
        unlocked = _runs_unlocked(actor, method_name, method)
    if unlocked:
        result = method(*args, **kwargs)
        if asyncio.iscoroutine(result):
            result = await result
    else:
        async with actor._lock:
            result = method(*args, **kwargs)
            if asyncio.iscoroutine(result):
                result = await result
    if type(result) in _PLAIN_RESULTS:
        return result
    return await handle_result(result, actor)


# Results that are never awaitable: returned without a look at them (the local fast path).
_PLAIN_RESULTS = frozenset({type(None), bool, int, float, complex, str, bytes, list, dict, set})


# -- what the runtime calls, on the pool's loop -------------------------------------------


async def complete(coroutine, done):
    """Awaits ``coroutine`` (started as a task by the runtime); ``done(ok, value)`` gets its
    outcome, a failure as text."""
    try:
        result = await coroutine
    except asyncio.CancelledError:
        done(False, "cancelled")
        raise
    except BaseException as error:  # noqa: BLE001 - handed to the runtime as text
        done(False, f"{type(error).__name__}: {error}")
    else:
        done(True, result)


async def build(init: bytes, address: str, uid: str):
    """Builds the actor ``init`` describes (pickled ``(cls, args, kwargs)``) and starts its
    ``__post_create__``: the actor, or, if ``__init__`` raised, the pickled error (bytes).

    ``__post_create__`` runs as a task of its own, outside the lock, while the actor already
    takes messages (as in xoscar: it may call the actor through any ref). Its creator awaits
    it with ``__xoscar_post_created__``."""
    try:
        cls, args, kwargs = loads(init)
        actor = cls(*args, **kwargs)
        # Both: a subclass may shadow the `uid` property (xoscar's tests make it a classmethod).
        actor._uid = actor.uid = uid.encode()
        actor._address = actor.address = address
    except asyncio.CancelledError:
        raise
    except BaseException as error:  # noqa: BLE001 - reaches the creator
        return dumps_error(error, address, os.getpid())
    actor._thread = threading.get_ident()
    _local_actors[(address, actor._uid)] = actor
    actor._post_create = asyncio.ensure_future(_maybe_await(actor.__post_create__()))
    return actor


def invoke(actor, call):
    """A call that came through the runtime: its pickled outcome now, if the method is a
    plain function that may run at once (nothing of the actor's queued before it, its lock
    free: running it now is what taking the lock would do); else a coroutine that runs it
    in turn and gives the outcome."""
    try:
        method_name, call_kind, args, kwargs = loads(call)
        if call_kind == CALL_METHOD_DEFAULT and not actor._xo_queued:
            method = getattr(actor, method_name)
            if _runs_at_once(actor, method_name, method):
                result = method(*args, **kwargs)
                if asyncio.iscoroutine(result) and not _has_no_lock_hint(method):
                    # A wrapper that returned a coroutine (an async @extensible method, say):
                    # its body has not run yet; it runs under the lock, in turn.
                    actor._xo_queued += 1
                    return _finish_in_turn(actor, result)
                if not _pending(result) and not _pending_tuple(result):
                    return OK + dumps(result)
                return _finish(actor, result)
    except BaseException as error:  # noqa: BLE001 - reaches the caller
        return RAISED + dumps_error(error, actor.address, os.getpid())
    actor._xo_queued += 1
    return _invoke_in_turn(actor, method_name, call_kind, args, kwargs)


# Actor type -> {method name: whether it is a plain function}, for the methods the type
# defines: bounded by them (a name is cached once getattr found it on the type), and weak, as
# a class sent by value is a new type at each create.
_plain_methods = weakref.WeakKeyDictionary()


def _is_plain(actor, method_name, method) -> bool:
    cls = type(actor)
    known = _plain_methods.get(cls)
    if known is None:
        known = _plain_methods[cls] = {}
    plain = known.get(method_name)
    if plain is None:
        plain = not (
            inspect.iscoroutinefunction(method)
            or inspect.isasyncgenfunction(method)
            or not callable(method)
            or isinstance(method, type)
        )
        if method_name not in getattr(actor, "__dict__", ()):
            known[method_name] = plain
    return plain


def _runs_at_once(actor, method_name, method) -> bool:
    if not _is_plain(actor, method_name, method):
        return False
    lock = actor._lock
    if _has_no_lock_hint(method) or isinstance(lock, _FakeLock):
        return True
    return not lock.locked() and not getattr(lock, "_waiters", None)


def _pending_tuple(result) -> bool:
    return type(result) is tuple and any(_pending(item) for item in result)


async def _finish(actor, result) -> bytes:
    try:
        return OK + dumps(await handle_result(result, actor))
    except BaseException as error:  # noqa: BLE001 - reaches the caller, a cancel too
        return RAISED + dumps_error(error, actor.address, os.getpid())


async def _finish_in_turn(actor, coroutine) -> bytes:
    try:
        async with actor._lock:
            result = await coroutine
        return OK + dumps(await handle_result(result, actor))
    except BaseException as error:  # noqa: BLE001 - reaches the caller, a cancel too
        return RAISED + dumps_error(error, actor.address, os.getpid())
    finally:
        actor._xo_queued -= 1


async def _invoke_in_turn(actor, method_name, call_kind, args, kwargs) -> bytes:
    try:
        result = await call_method(actor, method_name, call_kind, args, kwargs)
        return OK + dumps(result)
    except BaseException as error:  # noqa: BLE001 - reaches the caller, a cancel too
        return RAISED + dumps_error(error, actor.address, os.getpid())
    finally:
        actor._xo_queued -= 1


def _next_or_end(generator):
    try:
        return next(generator)
    except StopIteration:
        return _EXHAUSTED


_EXHAUSTED = object()


async def next_item(actor, generator_uid: bytes) -> bytes:
    """The next item of one of the actor's generators, pickled: ``END`` when it has no more,
    ``RAISED`` and the exception if it raised. A sync generator runs in a thread (it may
    block); each pull takes a serial actor's lock, as xoscar's does."""
    uid = loads(generator_uid)
    generator = actor._generators.get(uid)
    try:
        if generator is None:
            raise RuntimeError(f"No iterator with id: {uid}")
        async with actor._lock:
            if inspect.isgenerator(generator):
                item = await asyncio.to_thread(_next_or_end, generator)
                if item is _EXHAUSTED:
                    return END
            else:
                item = await generator.__anext__()
        return OK + dumps(item)
    except StopAsyncIteration:
        return END
    except asyncio.CancelledError:
        raise
    except BaseException as error:  # noqa: BLE001 - reaches the consumer
        return RAISED + dumps_error(error, actor.address, os.getpid())


async def pre_destroy(actor):
    """Runs the actor's ``__pre_destroy__`` and forgets it: None, or, if the hook raised, the
    pickled error (bytes). An actor whose ``__post_create__`` failed goes without it."""
    try:
        post_create = getattr(actor, "_post_create", None)
        if post_create is not None and not post_create.done():
            post_create.cancel()
        elif post_create is None or not (post_create.cancelled() or post_create.exception()):
            await actor.__xoscar_pre_destroy__()
    except asyncio.CancelledError:
        raise
    except BaseException as error:  # noqa: BLE001 - reaches the destroyer
        return dumps_error(error, actor.address, os.getpid())
    finally:
        key = (actor._address, actor._uid)
        if _local_actors.get(key) is actor:
            del _local_actors[key]
