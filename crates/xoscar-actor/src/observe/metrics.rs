//! What the actor layer reports through the `metrics` facade (names in docs/runtime.md,
//! "Metrics"). The pool layer reports connections, leases, reaps and dead peers itself; the
//! sub pool layer its restarts.

use std::time::Duration;

use crate::ActorError;

/// Counter, labels `actor`, `message`, `outcome`: messages an actor of this pool handled.
pub const MESSAGES: &str = "xoscar_actor_messages_total";
/// Histogram in seconds, labels `actor`, `message`: from a handler's start to its end.
pub const MESSAGE_SECONDS: &str = "xoscar_actor_message_seconds";
/// Counter, label `kind` ([`ActorError::kind`]): calls of this process that failed
/// (`call`, `call_with_timeout`, `call_cancellable`, `call_batch`, `call_stream`; tells are
/// not calls).
pub const CALL_ERRORS: &str = "xoscar_call_errors_total";

/// One message of type `M` handled by an actor of type `A`; `took`: its handler's time, when
/// it ran. Costs two label sets (allocated) and two registry lookups: why it is off unless
/// asked for.
pub(crate) fn message_handled<A, M>(outcome: &'static str, took: Option<Duration>) {
    let (actor, message) = (std::any::type_name::<A>(), std::any::type_name::<M>());
    metrics::counter!(MESSAGES, "actor" => actor, "message" => message, "outcome" => outcome)
        .increment(1);
    if let Some(took) = took {
        metrics::histogram!(MESSAGE_SECONDS, "actor" => actor, "message" => message)
            .record(took.as_secs_f64());
    }
}

/// Counts a failed call by kind (out of line: the hot path only tests for the error).
#[cold]
#[inline(never)]
pub(crate) fn call_failed(error: &ActorError) {
    metrics::counter!(CALL_ERRORS, "kind" => error.kind()).increment(1);
}
