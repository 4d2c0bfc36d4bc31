"""Pickling of calls, replies and errors: pickle (protocol 5) first, cloudpickle where pickle
cannot (lambdas, classes defined in functions or in ``__main__``), as xoscar does."""

import pickle
import traceback

import cloudpickle

loads = pickle.loads


def dumps(value) -> bytes:
    """``value`` pickled; by value with cloudpickle where pickle refuses it."""
    try:
        return pickle.dumps(value, protocol=5)
    except Exception:
        return cloudpickle.dumps(value, protocol=5)


def dumps_by_value(value) -> bytes:
    """``value`` pickled with cloudpickle (actor classes: a sub pool may not import them)."""
    return cloudpickle.dumps(value, protocol=5)


class UnpickleableError(Exception):
    """Stands for an exception that could not be pickled; its text is the original's."""


def dumps_error(error: BaseException, address: str, pid: int) -> bytes:
    """An exception with its traceback text and where it was raised, pickled."""
    text = "".join(traceback.format_exception(error))
    try:
        return dumps((error, text, address, pid))
    except Exception:
        stand_in = UnpickleableError(f"{type(error).__name__}: {error}")
        return dumps((stand_in, text, address, pid))


class _AsCauseBase:
    """Mixed into a remote exception's class: ``str()`` names where it was raised."""

    def __str__(self):
        return f"[address={self.address}, pid={self.pid}] {self.__wrapped__}"


def remote_error(error: BaseException, text: str, address: str, pid: int) -> BaseException:
    """The exception to raise for ``error`` raised in another process: an instance of a
    subclass of its type (``except ValueError`` still catches it) whose text starts with the
    address and pid it came from, with the remote traceback as a note."""
    if isinstance(error, _AsCauseBase):
        return error
    try:
        cls = type(
            type(error).__name__,
            (_AsCauseBase, type(error)),
            {
                "__init__": lambda self, *args, **kwargs: None,
                "__module__": type(error).__module__,
                "__getattr__": lambda self, name: getattr(self.__wrapped__, name),
            },
        )
        wrapped = cls()
    except TypeError:
        # A type that cannot be subclassed (or built without arguments): raise it as it is.
        wrapped = error
    else:
        wrapped.__wrapped__ = error
        wrapped.args = error.args
        wrapped.address = address
        wrapped.pid = pid
        wrapped.__cause__ = error.__cause__
        wrapped.__context__ = error.__context__
        wrapped.__suppress_context__ = error.__suppress_context__
    try:
        wrapped.add_note(f"Remote traceback (address={address}, pid={pid}):\n{text}")
    except Exception:
        pass
    return wrapped
