"""Refs: ``ActorRef`` (any actor, through the runtime) and ``LocalActorRef`` (an actor of a
pool in this process, called directly on this loop, as xoscar's local fast path)."""

import asyncio
import os
from threading import get_ident as _thread
import traceback
import weakref

from . import _native
from ._actor import (
    CALL_METHOD_BATCH,
    CALL_METHOD_DEFAULT,
    OK,
    _local_actors,
    call_method,
)
from ._serialize import dumps, loads, remote_error
from .batch import DelayedArgument
from .debug import local_refs_enabled
from .errors import ActorNotExist

_PUBLIC_DUNDERS = (
    "__xoscar_next__",
    "__xoscar_destroy_generator__",
    "__xoscar_post_created__",
    "__xoscar_pre_destroy__",
)


def to_binary(uid) -> bytes:
    """A uid as xoscar keeps it: bytes."""
    if isinstance(uid, bytes):
        return uid
    if isinstance(uid, str):
        return uid.encode()
    raise TypeError(f"an actor uid is str or bytes, not {type(uid).__name__}")


def _uid_text(uid: bytes) -> str:
    try:
        return uid.decode()
    except UnicodeDecodeError:
        raise ValueError(f"actor uid {uid!r} is not UTF-8") from None


def outcome(reply):
    """The value of a pickled outcome (bytes, or the runtime's read-only buffer), or its
    exception raised."""
    view = memoryview(reply)
    if view[0] == OK[0]:
        return loads(view[1:])
    error, text, address, pid = loads(view[1:])
    if isinstance(error, asyncio.CancelledError):
        raise asyncio.CancelledError(f"[address={address}, pid={pid}]")
    raise remote_error(error, text, address, pid)


class ActorRef:
    """A reference to the actor ``uid`` in the pool at ``address``. ``ref.method(...)`` calls
    it; ``.tell``, ``.delay``, ``.batch`` and ``.tell_delay`` are on the method."""

    __slots__ = ("address", "uid", "_native_ref", "_methods", "__weakref__")

    def __init__(self, address: str, uid):
        self.address = address
        self.uid = to_binary(uid)
        self._native_ref = None
        self._methods = {}

    def _native(self):
        if self._native_ref is None:
            self._native_ref = _native.Ref(self.address, _uid_text(self.uid))
        return self._native_ref

    def __getattr__(self, item):
        if item.startswith("_") and item not in _PUBLIC_DUNDERS:
            raise AttributeError(item)
        try:
            return self._methods[item]
        except KeyError:
            method = self._methods[item] = ActorRefMethod(self, item)
            return method

    async def destroy(self):
        """Destroys the actor (``destroy_actor``)."""
        from .api import destroy_actor

        await destroy_actor(self)

    def __eq__(self, other):
        return isinstance(other, ActorRef) and (self.address, self.uid) == (
            other.address,
            other.uid,
        )

    def __hash__(self):
        return hash((self.address, self.uid))

    def __repr__(self):
        return f"ActorRef(uid={self.uid!r}, address={self.address!r})"

    def __reduce__(self):
        return create_actor_ref, (self.address, self.uid)


def _actor_on_this_loop(ref: ActorRef):
    """The actor behind ``ref`` if it lives in a pool of this process and runs on this very
    loop (then going through the runtime would only hand the call to this thread back)."""
    if not local_refs_enabled():
        return None
    if not _local_actors:
        return None
    actor = _local_actors.get((ref.address, ref.uid))
    if actor is None or getattr(actor, "_pre_destroyed", False):
        return None
    # Its loop's thread (one loop runs on a thread at a time; asking the running loop costs a
    # getpid system call).
    if actor._thread != _thread():
        return None
    return actor


async def _call_here(actor, method: str, call_kind: int, args, kwargs):
    """A call through a plain ref to an actor on this loop: run directly, with the errors of
    a call through the runtime (a subclass of the raised type naming address and pid)."""
    try:
        return await call_method(actor, method, call_kind, args, kwargs)
    except asyncio.CancelledError:
        raise
    except BaseException as error:  # noqa: BLE001 - raised as a call's error is
        text = "".join(traceback.format_exception(error))
        raise remote_error(error, text, actor.address, os.getpid()) from None


async def _send(ref: ActorRef, method: str, call_kind: int, args, kwargs, wait=True):
    actor = _actor_on_this_loop(ref)
    if actor is not None:
        if wait:
            return await _call_here(actor, method, call_kind, args, kwargs)
        asyncio.ensure_future(_call_here(actor, method, call_kind, args, kwargs))
        # One turn of the loop: the told call starts (or queues on the lock) before the
        # teller's next call, as the runtime's order would have it.
        await asyncio.sleep(0)
        return None
    call = dumps((method, call_kind, args, kwargs))
    if not wait:
        await ref._native().tell(call)
        return None
    future, pending = ref._native().call(call)
    try:
        reply = await future
    except asyncio.CancelledError:
        if not future.cancelled():
            raise
        # Cancelled here: the cancel reaches the method, whose answer (its value if it
        # caught the cancel, else CancelledError) is this call's, as in xoscar.
        pending.cancel()
        reply = await pending.late()
    return outcome(reply)


class ActorRefMethod:
    """A method of the actor behind a ref: call it, or ``tell``, ``delay``, ``batch``."""

    __slots__ = ("ref", "method_name")

    def __init__(self, ref, method_name):
        self.ref, self.method_name = ref, method_name

    def __call__(self, *args, **kwargs):
        return _send(self.ref, self.method_name, CALL_METHOD_DEFAULT, args, kwargs)

    send = __call__

    def options(self, **options):
        """xoscar's per-call options; none changes a call here."""
        return self

    def tell(self, *args, **kwargs):
        """Sends the call without waiting for its outcome (its error, if any, is lost)."""
        return _send(self.ref, self.method_name, CALL_METHOD_DEFAULT, args, kwargs, wait=False)

    def delay(self, *args, **kwargs):
        """One call for ``batch``."""
        return DelayedArgument(self.method_name, args, kwargs)

    def batch(self, *delays, send=True):
        """Calls the ``@extensible`` method once with every delayed call's arguments."""
        args_list, kwargs_list = _batch_arguments(self.method_name, delays)
        return _send(
            self.ref, self.method_name, CALL_METHOD_BATCH, args_list, kwargs_list, wait=send
        )

    def tell_delay(self, *args, delay=None, ignore_conn_fail=True, **kwargs):
        """Tells the call after ``delay`` seconds; a task."""
        return asyncio.create_task(_tell_later(self, delay, ignore_conn_fail, args, kwargs))


async def _tell_later(method, delay, ignore_conn_fail, args, kwargs):
    if delay:
        await asyncio.sleep(delay)
    try:
        await method.tell(*args, **kwargs)
    except ConnectionError:
        if not ignore_conn_fail:
            raise


def _batch_arguments(method_name, delays):
    args_list, kwargs_list = [], []
    for delay in delays:
        if delay.method != method_name:
            raise ValueError("Does not support calling multiple methods in batch")
        args_list.append(delay.args)
        kwargs_list.append(delay.kwargs)
    return args_list, kwargs_list


class LocalActorRef(ActorRef):
    """A ref to an actor of a pool in this process: calls run its method directly on this
    loop (under its lock), with no pickling; errors are raised as they were. It holds the
    actor weakly, and finds it again if it is created anew under its uid."""

    __slots__ = ("_actor_weakref",)

    def __init__(self, address: str, uid):
        super().__init__(address, uid)
        self._actor_weakref = _DEAD

    def _actor(self):
        actor = self._actor_weakref()
        if actor is None or getattr(actor, "_pre_destroyed", False):
            actor = _local_actors.get((self.address, self.uid))
            if actor is None:
                raise ActorNotExist(f"Actor {self.uid} does not exist")
            self._actor_weakref = weakref.ref(actor)
        return actor

    def __getattr__(self, item):
        if item.startswith("_") and item not in _PUBLIC_DUNDERS:
            raise AttributeError(item)
        getattr(self._actor(), item)  # AttributeError now, as xoscar's local refs do
        try:
            return self._methods[item]
        except KeyError:
            method = self._methods[item] = LocalActorRefMethod(self, item)
            return method

    def __repr__(self):
        return (
            f"LocalActorRef(uid={self.uid!r}, address={self.address!r}), "
            f"actor_weakref={self._actor_weakref}"
        )


class LocalActorRefMethod(ActorRefMethod):
    """A method of an actor in this process, called directly."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        actor = self.ref._actor()
        if actor._thread != _thread():
            # Its pool runs on another thread's loop: through the runtime, which hands the
            # call to that loop.
            return _send(self.ref, self.method_name, CALL_METHOD_DEFAULT, args, kwargs)
        return call_method(actor, self.method_name, CALL_METHOD_DEFAULT, args, kwargs)

    send = __call__

    def tell(self, *args, **kwargs):
        asyncio.create_task(self(*args, **kwargs))
        return asyncio.sleep(0)

    def batch(self, *delays, send=True):
        args_list, kwargs_list = _batch_arguments(self.method_name, delays)
        actor = self.ref._actor()
        coroutine = call_method(
            actor, self.method_name, CALL_METHOD_BATCH, args_list, kwargs_list
        )
        if send:
            return coroutine
        asyncio.create_task(coroutine)
        return asyncio.sleep(0)


class _Gone:
    """Stands for an actor not looked up yet."""


_DEAD = weakref.ref(_Gone())


def create_actor_ref(address: str, uid) -> ActorRef:
    """A ref to ``(address, uid)``: a local one if a pool of this process holds the actor."""
    uid = to_binary(uid)
    if local_refs_enabled() and (address, uid) in _local_actors:
        return LocalActorRef(address, uid)
    return ActorRef(address, uid)
