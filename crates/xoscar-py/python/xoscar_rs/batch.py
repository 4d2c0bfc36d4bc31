"""``@xo.extensible``: a method with an optional implementation for many calls at once, which
``ref.method.batch(ref.method.delay(...), ...)`` reaches in one message (xoscar's)."""

import asyncio
import collections
import inspect

from ._actor import NO_LOCK_ATTRIBUTE_HINT


class DelayedArgument:
    """One call of a batch: ``method.delay(*args, **kwargs)``."""

    __slots__ = ("method", "args", "kwargs")

    def __init__(self, method, args, kwargs):
        self.method, self.args, self.kwargs = method, args, kwargs


def build_args_binder(func, remove_self=True):
    """A function that binds arguments as ``func`` would and returns them as a named tuple,
    defaults filled in (``*args`` a tuple, ``**kwargs`` a dict)."""
    signature = inspect.signature(func)
    parameters = list(signature.parameters.values())
    if remove_self and parameters:
        parameters = parameters[1:]
        signature = signature.replace(parameters=parameters)
    name = getattr(func, "__name__", "")
    name = name if name.isidentifier() else "anonymous"
    bound_type = collections.namedtuple(f"{name}_arguments", [p.name for p in parameters])

    def binder(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound_type(*(bound.arguments[p.name] for p in parameters))

    return binder


def _is_no_lock(func) -> bool:
    return func is not None and getattr(func, NO_LOCK_ATTRIBUTE_HINT, False)


class _ExtensibleAccessor:
    """What ``@extensible`` leaves on the class; ``@method.batch`` adds the batch form."""

    def __init__(self, func):
        self.func = func
        self.batch_func = None
        self.is_async = asyncio.iscoroutinefunction(func)
        self.__name__ = getattr(func, "__name__", "method")
        self.__doc__ = getattr(func, "__doc__", None)
        if self.is_async:
            _mark_coroutine_function(self)
        self._sync_no_lock()

    def _sync_no_lock(self):
        if _is_no_lock(self.func) or _is_no_lock(self.batch_func):
            setattr(self, NO_LOCK_ATTRIBUTE_HINT, True)

    def batch(self, func):
        """Registers ``func(self, args_list, kwargs_list)`` as the batch form."""
        self.batch_func = func
        self._sync_no_lock()
        return self

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return _ExtensibleWrapper(self, instance)


def _mark_coroutine_function(obj):
    marker = getattr(inspect, "markcoroutinefunction", None)
    if marker is not None:  # Python 3.12+
        marker(obj)
    else:
        obj._is_coroutine = asyncio.coroutines._is_coroutine


class _ExtensibleWrapper:
    """An extensible method bound to an instance."""

    def __init__(self, accessor: _ExtensibleAccessor, instance):
        self._accessor = accessor
        self._instance = instance
        if getattr(accessor, NO_LOCK_ATTRIBUTE_HINT, False):
            setattr(self, NO_LOCK_ATTRIBUTE_HINT, True)

    @property
    def _batch(self):
        batch_func = self._accessor.batch_func
        return None if batch_func is None else batch_func.__get__(self._instance)

    def _single(self, *args, **kwargs):
        return self._accessor.func(self._instance, *args, **kwargs)

    def _single_unsupported(self) -> bool:
        return getattr(self._instance, f"_{self._accessor.__name__}_no_single", False)

    def _mark_single_unsupported(self):
        setattr(self._instance, f"_{self._accessor.__name__}_no_single", True)

    def __call__(self, *args, **kwargs):
        if self._accessor.is_async:
            return self._call_async(args, kwargs)
        if not self._single_unsupported():
            try:
                return self._single(*args, **kwargs)
            except NotImplementedError:
                if self._batch is None:
                    raise
                self._mark_single_unsupported()
        return self._batch([args], [kwargs])[0]

    async def _call_async(self, args, kwargs):
        if not self._single_unsupported():
            try:
                return await self._single(*args, **kwargs)
            except NotImplementedError:
                if self._batch is None:
                    raise
                self._mark_single_unsupported()
        result = await self._batch([args], [kwargs])
        return None if result is None else result[0]

    def delay(self, *args, **kwargs):
        """One call for ``batch``."""
        return DelayedArgument(self._accessor.__name__, args, kwargs)

    def batch(self, *delays):
        """Calls the batch form (or each call) with every delayed call's arguments."""
        return self.call_with_lists([d.args for d in delays], [d.kwargs for d in delays])

    def bind(self, *args, **kwargs):
        """The arguments as the single form binds them (a named tuple)."""
        return build_args_binder(self._accessor.func)(*args, **kwargs)

    def call_with_lists(self, args_list, kwargs_list):
        """One call per ``(args, kwargs)`` pair, through the batch form where there is one."""
        if kwargs_list is None:
            kwargs_list = [{}] * len(args_list)
        if self._accessor.is_async:
            return self._call_with_lists_async(args_list, kwargs_list)
        if not args_list:
            return []
        if self._batch is not None:
            return self._batch(args_list, kwargs_list)
        return [self._single(*a, **kw) for a, kw in zip(args_list, kwargs_list)]

    async def _call_with_lists_async(self, args_list, kwargs_list):
        if not args_list:
            return []
        if len(args_list) == 1:
            return [await self._call_async(args_list[0], kwargs_list[0])]
        if self._batch is not None:
            return await self._batch(args_list, kwargs_list)
        tasks = [
            asyncio.ensure_future(self._single(*a, **kw)) for a, kw in zip(args_list, kwargs_list)
        ]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            raise


def extensible(func):
    """Makes ``func`` a method that may also be given a batch form (``@func.batch``)."""
    return _ExtensibleAccessor(func)
