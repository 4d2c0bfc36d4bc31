"""xoscar's debug options. Here they switch one thing: while set (with ``log_cycle_send``),
refs to actors of this process are plain ``ActorRef``s through the runtime, not local ones,
as in xoscar. The other fields are kept for xoscar's signature and change nothing."""

import dataclasses
import json
import os

from . import _native


@dataclasses.dataclass
class DebugOptions:
    """xoscar's fields, with its defaults."""

    actor_call_timeout: int = 10
    process_message_timeout: int = 30
    actor_lock_timeout: int = 30
    log_unhandled_errors: bool = True
    log_cycle_send: bool = True


_options = None


def set_debug_options(options: DebugOptions | None):
    """Sets (or, with None, clears) the debug options of this process."""
    global _options
    _options = options


def get_debug_options() -> DebugOptions | None:
    """The debug options of this process, or None."""
    return _options


def local_refs_enabled() -> bool:
    """Whether refs to actors of this process call them directly."""
    return _options is None or not _options.log_cycle_send


def _from_env():
    value = os.environ.get("DEBUG_OSCAR", "")
    if value in ("", "0"):
        return None
    if value == "1":
        return DebugOptions()
    try:
        return DebugOptions(**json.loads(value))
    except (ValueError, TypeError) as error:
        raise ValueError(f"DEBUG_OSCAR={value!r} is neither 0, 1 nor DebugOptions as JSON: {error}")


_options = _from_env()


def caller_stats() -> dict:
    """The counters of this process's caller: ``open_connections``, ``connects``, ``reaps``
    (closed as idle, ``XOSCAR_IDLE_TIMEOUT``), ``dead_peers`` (silent past the heartbeat),
    ``leases_in_flight``."""
    return dict(_native.caller_stats())
