"""xoscar's API functions: pools, actors, refs."""

import asyncio
import os
import sys
import uuid

from . import _native
from ._actor import forget_local_actors
from ._ref import ActorRef, LocalActorRef, _uid_text, create_actor_ref, to_binary
from ._serialize import _AsCauseBase, dumps_by_value, loads, remote_error
from .allocate_strategy import AllocateStrategy, IdleLabel
from .errors import ActorNotExist, NoIdleSlot, XoscarError

_RECOVERY = {"actor": "actors", True: "actors", "process": "process", False: "off", None: "off"}


def _normalize(address: str) -> str:
    """xoscar's address forms: ``host:port``, or a bare host (any free port)."""
    if not isinstance(address, str) or not address:
        raise ValueError(f"an address is a non-empty str, not {address!r}")
    if "://" in address:
        return address
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and (":" not in host or host.endswith("]")):
        return address
    return f"{address}:0"


class ActorPool:
    """A main pool of this process with its sub pools (Python processes). Started when
    returned; ``async with pool:`` stops it at the end; ``await pool.stop()`` too."""

    def __init__(self, native):
        self._native = native
        self._stopped = False
        self._stop_done = asyncio.Event()

    @property
    def external_address(self) -> str:
        """The main pool's address (``host:port``)."""
        return self._native.external_address

    @property
    def sub_processes(self) -> dict:
        """Sub pool address → pid, as xoscar's dict of processes is keyed."""
        return {address: pid for _, _, address, pid in self._native.sub_pools()}

    @property
    def stopped(self) -> bool:
        """Whether ``stop`` ran."""
        return self._stopped

    async def start(self):
        """The pool is started already; a start after ``stop`` is an error (as in xoscar)."""
        if self._stopped:
            raise RuntimeError("pool has been stopped, cannot start again")

    async def stop(self):
        """Stops gracefully: accepted messages are handled, ``__pre_destroy__`` runs, sub
        pools end."""
        self._stopped = True
        await self._native.stop()
        forget_local_actors(self.external_address)
        self._stop_done.set()

    async def join(self, timeout=None):
        """Waits until ``stop`` has stopped the pool (at most ``timeout`` seconds:
        ``TimeoutError`` past it)."""
        await asyncio.wait_for(self._stop_done.wait(), timeout)

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc):
        await self.stop()


async def create_actor_pool(
    address: str,
    n_process: int | None = None,
    *,
    labels: list | None = None,
    envs: list | None = None,
    auto_recover="actor",
    **kwargs,
) -> ActorPool:
    """A main pool at ``address`` and ``n_process`` sub pools, each a Python process
    (spawned, not forked) serving on the same host. ``labels``: ``n_process + 1`` labels, the
    main pool's first; ``envs``: one dict of environment variables per sub pool;
    ``auto_recover``: ``"actor"`` (restart a dead sub pool and create again the actors placed
    there), ``"process"`` (restart it), or ``False``. Other xoscar options are accepted and
    ignored (docs/python.md lists them)."""
    n_process = n_process or 0
    if n_process < 0:
        raise ValueError(f"n_process must be >= 0, not {n_process}")
    if labels is not None and len(labels) != n_process + 1:
        raise ValueError(f"labels needs {n_process + 1} entries (the main pool's first)")
    if envs is not None and len(envs) != n_process:
        raise ValueError(f"envs needs {n_process} entries, one per sub pool")
    if auto_recover not in _RECOVERY:
        raise ValueError(f"auto_recover is 'actor', 'process' or False, not {auto_recover!r}")
    labels = [label or "" for label in labels] if labels else [""] * (n_process + 1)
    # Sub pools import what this process imports (the classes of actors sent there).
    path = os.pathsep.join(entry for entry in sys.path if entry)
    sub_pools = []
    for index in range(n_process):
        env = {"PYTHONPATH": path}
        env.update({str(k): str(v) for k, v in ((envs or [{}] * n_process)[index]).items()})
        sub_pools.append((labels[index + 1], list(env.items())))
    program = (sys.executable, ["-m", "xoscar_rs._subpool"])
    native = await _native.start_pool(
        _normalize(address), sub_pools, program, labels[0], _RECOVERY[auto_recover]
    )
    return ActorPool(native)


def _raise_create_error(error: XoscarError, allocate_strategy):
    text = str(error)
    marker = _native.PICKLED_ERROR
    if marker in text:
        raised, trace, address, pid = loads(bytes.fromhex(text.split(marker, 1)[1].strip()))
        raise remote_error(raised, trace, address, pid) from None
    if isinstance(allocate_strategy, IdleLabel) and getattr(error, "kind", "") == "placement":
        raise NoIdleSlot(text) from None
    raise error


async def create_actor(actor_cls, *args, uid=None, address=None, **kwargs) -> ActorRef:
    """Creates an actor of ``actor_cls`` (built from ``*args, **kwargs`` in the pool it is
    placed in) through the pool at ``address``; ``allocate_strategy`` places it among a main
    pool and its sub pools. ``uid``: default a random one."""
    if address is None:
        raise ValueError("address has to be provided")
    strategy = kwargs.pop("allocate_strategy", None)
    if strategy is not None and not isinstance(strategy, AllocateStrategy):
        kwargs["allocate_strategy"] = strategy
        strategy = None
    uid = to_binary(uid) if uid is not None else uuid.uuid4().hex.encode()
    kind, value = strategy._placement() if strategy is not None else ("here", "")
    init = dumps_by_value((actor_cls, args, kwargs))
    try:
        at, created = await _native.create_actor(
            address, _native.TYPE_NAME, init, _uid_text(uid), kind, value
        )
    except XoscarError as error:
        _raise_create_error(error, strategy)
    ref = ActorRef(at, created.encode())
    try:
        await ref.__xoscar_post_created__()
    except BaseException:
        # Its __post_create__ failed: the actor goes (without __pre_destroy__).
        try:
            await _native.destroy_actor(ref.address, _uid_text(ref.uid))
        except XoscarError:
            pass
        raise
    return ref


def _ref_arguments(args, kwargs):
    if set(kwargs) - {"address", "uid"}:
        raise ValueError("Only `address` or `uid` keywords are supported")
    if len(args) == 1 and isinstance(args[0], ActorRef):
        return args[0].address, args[0].uid
    address, uid = kwargs.get("address"), kwargs.get("uid")
    if len(args) >= 2:
        address, uid = args[0], args[1]
    elif len(args) == 1:
        if "uid" in kwargs or address is None and isinstance(args[0], str) and ":" in args[0]:
            address = args[0]
        else:
            uid = args[0]
    if address is None:
        raise ValueError("address has to be provided")
    if uid is None:
        raise ValueError("Actor uid should be provided")
    if not isinstance(uid, (str, bytes)):
        raise ValueError(f"an actor uid is str or bytes, not {type(uid).__name__}")
    return address, to_binary(uid)


async def actor_ref(*args, **kwargs) -> ActorRef:
    """A ref to an existing actor: ``actor_ref(address, uid)``, ``actor_ref(ref)``,
    ``actor_ref(uid, address=...)``. A main pool finds actors of its sub pools. Raises
    ``ActorNotExist`` if no pool holds it. An actor of a pool in this process gets a local
    ref (direct calls)."""
    address, uid = _ref_arguments(args, kwargs)
    local = create_actor_ref(address, uid)
    if isinstance(local, LocalActorRef):
        return local
    at, found = await _native.actor_ref(address, _uid_text(uid))
    return create_actor_ref(at, found.encode())


async def has_actor(ref: ActorRef) -> bool:
    """Whether the actor lives (a main pool also answers for its sub pools)."""
    return await _native.has_actor(ref.address, _uid_text(ref.uid))


async def destroy_actor(ref: ActorRef):
    """Destroys the actor: its ``__pre_destroy__`` runs (its error reaches here); then its
    uid is free. ``ActorNotExist`` if it is not there."""
    # The hook first, while the actor still takes calls (it may call itself, as in xoscar);
    # then the runtime's destroy. The actor goes even if the hook raised.
    hook_error = None
    try:
        await ActorRef(ref.address, ref.uid).__xoscar_pre_destroy__()
    except ActorNotExist as error:
        if not isinstance(error, _AsCauseBase):
            raise  # the actor itself is not there
        hook_error = error  # raised by the hook (it called an actor that is gone)
    except XoscarError as error:
        # Not a Python actor (a Rust one): no hook of ours to run.
        if getattr(error, "kind", "") not in ("wrong_type", "no_handler"):
            hook_error = error
    except Exception as error:  # noqa: BLE001 - raised once the actor is gone
        hook_error = error
    try:
        await _native.destroy_actor(ref.address, _uid_text(ref.uid))
    except XoscarError as error:
        _raise_create_error(error, None)
    if hook_error is not None:
        raise hook_error


async def kill_actor(ref: ActorRef):
    """xoscar kills the actor's whole sub pool process; here it destroys the actor."""
    await destroy_actor(ref)


async def wait_for(fut, timeout=None):
    """``asyncio.wait_for`` that gives up at ``timeout`` even if the awaited call does not
    finish its cancellation."""
    loop = asyncio.get_running_loop()
    outer = loop.create_future()
    task = asyncio.ensure_future(fut)

    def on_done(done):
        if outer.done():
            return
        if done.cancelled():
            outer.cancel()
        elif done.exception() is not None:
            outer.set_exception(done.exception())
        else:
            outer.set_result(done.result())

    task.add_done_callback(on_done)
    try:
        return await asyncio.wait_for(outer, timeout)
    except BaseException:
        # Timed out, or this task was cancelled: the call goes too (without waiting for it).
        if not task.done():
            task.cancel()
        raise


async def create_rust_actor(
    type_name: str, init: bytes = b"", *, uid=None, address=None, allocate_strategy=None
) -> ActorRef:
    """Creates a Rust actor of the type registered as ``type_name`` in the pools of this
    package (by a Rust extension built on it: ``xoscar_py::register_rust_actors``) or of a Rust
    program, from ``init``, the protobuf encoding of its init message; placed as
    ``allocate_strategy`` says. Call it with ``call_named``."""
    if address is None:
        raise ValueError("address has to be provided")
    uid = to_binary(uid) if uid is not None else uuid.uuid4().hex.encode()
    kind, value = allocate_strategy._placement() if allocate_strategy is not None else ("here", "")
    try:
        at, created = await _native.create_actor(
            address, type_name, bytes(init), _uid_text(uid), kind, value
        )
    except XoscarError as error:
        _raise_create_error(error, allocate_strategy)
    return ActorRef(at, created.encode())


async def call_named(ref: ActorRef, message: str, body: bytes) -> bytes:
    """Calls a Rust actor's remote message by the name its type declared
    (``RemoteMessages::message``): ``body`` is the message's protobuf encoding; the result is
    the reply's (a scalar reply is the matching ``google.protobuf`` wrapper, e.g.
    ``Int64Value``). ``ActorNotExist``, or ``XoscarError`` with ``kind == "no_handler"`` for
    a name the type did not declare."""
    reply = await _native.call_named(ref.address, _uid_text(ref.uid), message, bytes(body))
    return bytes(reply)
