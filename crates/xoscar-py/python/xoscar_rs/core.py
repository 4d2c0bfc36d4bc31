"""xoscar's ``xoscar.core`` names that user code and xoscar's tests import."""

from ._actor import NO_LOCK_ATTRIBUTE_HINT, no_lock
from ._ref import ActorRef, ActorRefMethod, LocalActorRef, create_actor_ref
from .transfer import BufferRef

__all__ = [
    "NO_LOCK_ATTRIBUTE_HINT",
    "ActorRef",
    "ActorRefMethod",
    "BufferRef",
    "LocalActorRef",
    "create_actor_ref",
    "no_lock",
]
