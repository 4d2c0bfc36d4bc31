"""xoscar's API on xoscar-rs: ``import xoscar_rs as xo``.

Actors in pools (one per process, sub pools as Python processes), called by reference
``(address, uid)``; pools, connections, routing, mailboxes and sub pool processes are the
Rust runtime's. docs/python.md says what differs from xoscar.
"""

from typing import TypeVar, Union

from . import allocate_strategy, batch, debug, errors
from ._actor import Actor, StatelessActor, no_lock
from ._ref import ActorRef, LocalActorRef, create_actor_ref
from .api import (
    ActorPool,
    actor_ref,
    call_named,
    create_actor,
    create_rust_actor,
    create_actor_pool,
    destroy_actor,
    has_actor,
    kill_actor,
    wait_for,
)
from .batch import extensible
from .debug import DebugOptions, get_debug_options, set_debug_options
from .generator import IteratorWrapper, generator
from .transfer import BufferRef, buffer_ref, copy_to
from .errors import ActorAlreadyExist, ActorNotExist, Return, SendMessageFailed, ServerClosed

_T = TypeVar("_T")
#: A ref typed by the actor class it reaches (annotations only), as in xoscar.
ActorRefType = Union[ActorRef, _T]

__all__ = [
    "ActorRefType",
    "Actor",
    "ActorAlreadyExist",
    "ActorNotExist",
    "ActorPool",
    "ActorRef",
    "DebugOptions",
    "LocalActorRef",
    "Return",
    "SendMessageFailed",
    "ServerClosed",
    "StatelessActor",
    "actor_ref",
    "allocate_strategy",
    "batch",
    "call_named",
    "buffer_ref",
    "copy_to",
    "BufferRef",
    "create_actor",
    "create_actor_pool",
    "create_actor_ref",
    "create_rust_actor",
    "destroy_actor",
    "errors",
    "extensible",
    "get_debug_options",
    "set_debug_options",
    "debug",
    "generator",
    "IteratorWrapper",
    "has_actor",
    "kill_actor",
    "no_lock",
    "wait_for",
]
