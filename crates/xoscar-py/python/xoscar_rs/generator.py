"""``@xo.generator``: a method that returns a generator streams its items to the caller,
``async for x in await ref.method()``, with the runtime's credit-based flow control (the
producer runs at most about a thousand items ahead of a slow consumer)."""

import asyncio
import functools
import inspect
import uuid

from ._ref import ActorRef, _actor_on_this_loop, outcome
from ._serialize import dumps


def generator(func):
    """Marks an actor method (sync or async) whose generator result is streamed to callers;
    a result that is not a generator is returned as it is. A sync one runs in a thread."""
    to_thread = not asyncio.iscoroutinefunction(func)

    @functools.wraps(func)
    async def wrapper(self, *args, **kwargs):
        if to_thread:
            result = await asyncio.to_thread(func, self, *args, **kwargs)
        else:
            result = await func(self, *args, **kwargs)
        if inspect.isgenerator(result) or inspect.isasyncgen(result):
            generator_uid = uuid.uuid1().hex
            self._keep_generator(generator_uid, result)
            return IteratorWrapper(generator_uid, self.address, self.uid)
        return result

    return wrapper


class IteratorWrapper:
    """The caller's side of an actor's generator: an async iterator of its items. Dropping
    it (or reaching the end, or an error) makes the actor forget the generator; a pickled
    copy takes that duty over from the original."""

    def __init__(self, uid, actor_address, actor_uid):
        self._uid = uid
        self._actor_address = actor_address
        self._actor_uid = actor_uid
        self._stream = None
        self._gc_destroy = True

    def __getstate__(self):
        state = dict(self.__dict__, _stream=None, _gc_destroy=True)
        # The copy will consume it; the original no longer forgets it when dropped.
        self._gc_destroy = False
        return state

    def _ref(self) -> ActorRef:
        return ActorRef(self._actor_address, self._actor_uid)

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._stream is None:
            self._stream = await self._ref()._native().stream(dumps(self._uid))
        item = await self._stream.next()
        if item is None:
            await self.destroy()
            raise StopAsyncIteration
        try:
            return outcome(item)
        except BaseException:
            await self.destroy()
            raise

    async def destroy(self):
        """Makes the actor forget the generator (and close it)."""
        if self._gc_destroy:
            self._gc_destroy = False
            self._stream = None
            await self._ref().__xoscar_destroy_generator__.tell(self._uid)

    def __del__(self):
        if getattr(self, "_gc_destroy", False):
            self._gc_destroy = False
            try:
                ref = self._ref()
                actor = _actor_on_this_loop(ref)
                if actor is not None:
                    # On the actor's own loop: now, before whatever this loop runs next.
                    actor.__xoscar_destroy_generator__(self._uid)
                    return
                call = dumps(("__xoscar_destroy_generator__", 0, (self._uid,), {}))
                ref._native().tell_detached(call)
            except Exception:  # noqa: BLE001 - a finalizer must not raise
                pass
