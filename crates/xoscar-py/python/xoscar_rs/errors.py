"""xoscar's exception classes, raised by this package where xoscar raises them.

A runtime error also carries ``kind``: the runtime's short name for it (``not_found``,
``connection_lost``, ...), as ``xoscar::ActorError::kind`` gives it.
"""


class XoscarError(Exception):
    """Base of this package's errors."""

    kind: str = ""


class ReconstructWorkerError(XoscarError):
    """A sub pool could not be rebuilt."""


class ActorPoolNotStarted(XoscarError):
    """No pool runs where one was needed."""


class ActorNotExist(XoscarError):
    """No actor with this uid lives in the pool."""


class ActorAlreadyExist(XoscarError):
    """An actor with this uid lives in the pool already."""


class NoIdleSlot(XoscarError):
    """An ``IdleLabel`` create found every pool with the label taken."""


class NoFreeSlot(XoscarError):
    """No pool was free for the create."""


class SlotStateError(XoscarError):
    """A slot was in a state that does not allow the operation."""


class ServerClosed(XoscarError):
    """The connection to the actor's pool failed or was lost."""


class CannotCancelTask(XoscarError):
    """The call had ended before its cancel arrived."""


class SendMessageFailed(XoscarError):
    """The reply could not be pickled."""


class Return(XoscarError):
    """Ends a promise-style generator method with ``value``."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value
