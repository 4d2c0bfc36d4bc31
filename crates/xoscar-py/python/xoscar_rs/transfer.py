"""xoscar's ``buffer_ref`` and ``copy_to`` over the runtime's buffer transfer: a buffer of an
actor (a ``memoryview``, a numpy array, anything with the buffer protocol that takes a weak
reference) exposed by reference; writers copy into it in chunks, several in flight, and the
copy is done when every byte is in that buffer."""

import weakref

from . import _native


class BufferRef:
    """A reference to a buffer exposed by a pool: it travels inside messages (only a holder
    of it may write into the buffer). Exposed until the buffer itself is collected."""

    _ref_to_buffers = weakref.WeakValueDictionary()

    __slots__ = ("address", "_encoded", "__weakref__")

    def __init__(self, address: str, encoded: bytes):
        self.address = address
        self._encoded = encoded

    @classmethod
    def get_buffer(cls, ref: "BufferRef"):
        """The buffer ``ref`` refers to, in the process that exposed it."""
        return cls._ref_to_buffers[ref]

    def __reduce__(self):
        return BufferRef, (self.address, self._encoded)

    def __hash__(self):
        return hash((self.address, self._encoded))

    def __eq__(self, other):
        return type(other) is BufferRef and (self.address, self._encoded) == (
            other.address,
            other._encoded,
        )

    def __repr__(self):
        # Never the encoded reference: it holds the buffer's key.
        return f"BufferRef(address={self.address})"


def buffer_ref(address: str, buffer) -> BufferRef:
    """Exposes ``buffer`` (of this process, which runs the pool at ``address``) for writes by
    reference (``copy_to``) until ``buffer`` is collected."""
    length = memoryview(buffer).nbytes
    try:
        target = weakref.ref(buffer)
    except TypeError:
        raise TypeError(
            f"a {type(buffer).__name__} takes no weak reference: expose a memoryview of it"
        ) from None
    encoded = _native.expose_buffer(address, target, length)
    ref = BufferRef(address, encoded)
    BufferRef._ref_to_buffers[ref] = buffer
    weakref.finalize(buffer, _native.withdraw_buffer, address, encoded)
    return ref


async def copy_to(local_buffers: list, remote_refs: list, block_size: int | None = None):
    """Copies each of ``local_buffers`` into the buffer the ``remote_refs`` entry at the same
    index refers to, from its start, in chunks of ``block_size`` bytes (default 4 MiB)."""
    if not local_buffers or not remote_refs:
        raise ValueError("copy_to needs buffers and references to copy them into")
    assert block_size is None or block_size > 0, "block_size must be positive"
    if len(local_buffers) != len(remote_refs):
        raise ValueError(f"{len(local_buffers)} buffers for {len(remote_refs)} references")
    local = [
        buffer if isinstance(buffer, bytes) else memoryview(buffer).cast("B").tobytes()
        for buffer in local_buffers
    ]
    encoded = [ref._encoded for ref in remote_refs]
    await _native.copy_to(local, encoded, block_size)


def _write_into(target, offset: int, parts) -> bytes:
    """One chunk written into an exposed buffer (on its pool's loop)."""
    buffer = target()
    if buffer is None:
        raise RuntimeError("the buffer is gone (collected)")
    view = memoryview(buffer).cast("B")
    for part in parts:
        end = offset + len(part)
        view[offset:end] = part
        offset = end
    return b""
