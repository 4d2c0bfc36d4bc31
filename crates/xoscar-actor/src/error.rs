//! [`ActorError`], what callers get, and [`Failure`], what handlers return.
//!
//! The bottom of the crate: uses nothing else of it.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use xoscar_pool::PoolError;

/// Why an actor operation failed. Variants about an actor name the pool's address and the
/// actor's uid; those raised by a remote pool also carry its process id.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ActorError {
    /// No actor with this uid lives in the pool (never created, destroyed, or failed to start).
    #[error("no actor {uid:?} at {address}")]
    NotFound {
        /// The pool's address.
        address: String,
        /// The uid asked for.
        uid: String,
    },
    /// An actor with this uid exists already in the pool.
    #[error("actor {uid:?} already exists at {address}")]
    AlreadyExists {
        /// The pool's address.
        address: String,
        /// The uid asked for.
        uid: String,
    },
    /// No actor type is registered under this name in the pool.
    #[error("no actor type registered as {type_name:?} at {address}")]
    UnknownType {
        /// The pool's address.
        address: String,
        /// The name asked for.
        type_name: String,
    },
    /// The actor has no remote handler registered under this message name (a caller built
    /// from another version of the actor type, or a forged request).
    #[error("actor {uid:?} ({actor_type}) at {address} has no handler for message {message:?}")]
    NoHandler {
        /// The pool's address.
        address: String,
        /// The actor's uid.
        uid: String,
        /// The actor's type.
        actor_type: String,
        /// The message name asked for.
        message: String,
    },
    /// The actor lives in another process and this message type was not declared in its
    /// [`crate::Actor::remote_messages`], so it cannot be encoded. Nothing was sent.
    #[error(
        "{actor_type} at {address} is remote, and {message} is not one of its remote messages \
         (declare it in Actor::remote_messages)"
    )]
    NotRemote {
        /// The target pool's address.
        address: String,
        /// The actor type.
        actor_type: String,
        /// The message type.
        message: String,
    },
    /// A message, init value or request header that the pool could not decode. That request
    /// fails; the connection and the pool go on.
    #[error("bad request to {address}: {detail}")]
    BadMessage {
        /// The pool that refused it.
        address: String,
        /// What did not decode.
        detail: String,
    },
    /// A response this process could not decode (a reply of another type or version).
    #[error("bad reply from {address}: {detail}")]
    BadReply {
        /// The pool that answered.
        address: String,
        /// What did not decode.
        detail: String,
    },
    /// The handler (or a lifecycle hook, or a factory) returned an error.
    #[error("actor {uid:?} ({actor_type}) at {address} (pid {pid}) failed: {message}")]
    Handler {
        /// The address of the actor's pool.
        address: String,
        /// The process id of the actor's pool.
        pid: u32,
        /// The actor's type.
        actor_type: String,
        /// The actor's uid.
        uid: String,
        /// The error's message, with its chain of sources.
        message: String,
        /// The error itself, when the actor lives in this process.
        #[source]
        source: Option<Arc<dyn StdError + Send + Sync>>,
    },
    /// The handler (or a lifecycle hook, or a factory) panicked. A serial actor is stopped
    /// after its handler panics (its state may be half-updated): later calls get
    /// [`ActorError::NotFound`], and calls queued behind the panicking one
    /// [`ActorError::Stopped`]. Every other actor of the pool goes on.
    #[error("actor {uid:?} ({actor_type}) at {address} (pid {pid}) panicked: {message}")]
    HandlerPanicked {
        /// The address of the actor's pool.
        address: String,
        /// The process id of the actor's pool.
        pid: u32,
        /// The actor's type.
        actor_type: String,
        /// The actor's uid.
        uid: String,
        /// The panic message, when it was a string.
        message: String,
    },
    /// The call's timeout passed before its answer came ([`crate::ActorRef::call_with_timeout`],
    /// or the caller's `call_timeout` for a remote call). The deadline travels with the
    /// message: an actor that had not started it by then skips it.
    #[error("call to actor {uid:?} at {address} timed out after {timeout:?}")]
    CallTimedOut {
        /// The actor's pool.
        address: String,
        /// The actor's uid.
        uid: String,
        /// The timeout in force.
        timeout: std::time::Duration,
    },
    /// The actor stopped (destroyed, panicked, or its pool shut down) after accepting the
    /// message and before answering it.
    #[error("actor {uid:?} at {address} stopped before answering")]
    Stopped {
        /// The pool's address.
        address: String,
        /// The actor's uid.
        uid: String,
    },
    /// The call was cancelled ([`crate::ActorRef::call_cancellable`]) and its handler stopped
    /// without answering: it was dropped where it waited, or skipped before it started. A
    /// handler that looks at [`crate::Context::cancellation`] answers instead, and the caller
    /// gets that answer.
    #[error("call to actor {uid:?} at {address} cancelled")]
    Cancelled {
        /// The pool's address.
        address: String,
        /// The actor's uid.
        uid: String,
    },
    /// A buffer transfer failed at one chunk: no such buffer (never exposed, or withdrawn), a
    /// write past its end, a local buffer longer than its target, an I/O error of a file
    /// buffer, or an unusable address in the buffer's reference.
    #[error("buffer {buffer} at {address}, offset {offset}: {reason}")]
    Buffer {
        /// The address of the buffer's pool.
        address: String,
        /// The buffer's id in its pool.
        buffer: u64,
        /// Where the failed chunk starts.
        offset: u64,
        /// What went wrong.
        reason: String,
    },
    /// No pool fits a create's [`crate::Placement`] (no such sub pool, none with the label,
    /// none idle).
    #[error("placement at {address}: {reason}")]
    Placement {
        /// The pool that placed.
        address: String,
        /// Why nothing fits.
        reason: String,
    },
    /// A typed reference names an actor of another type in this process.
    #[error("actor {uid:?} at {address} is a {actual}, not a {expected}")]
    WrongType {
        /// The pool's address.
        address: String,
        /// The actor's uid.
        uid: String,
        /// The type the reference expects.
        expected: String,
        /// The actor's type.
        actual: String,
    },
    /// The pool does not take this request from this peer on this listener: a request meant
    /// for the pools of one host (routes, actor-gone notices) from anyone else, or a request
    /// forwarded around a loop (docs/security.md).
    #[error("{address} refused the request: {reason}")]
    Forbidden {
        /// The pool that refused it.
        address: String,
        /// Why.
        reason: String,
    },
    /// The pool failed to reach the remote pool: connect refused or timed out, connection
    /// lost or silent (dead peer), call timed out, message too large.
    #[error(transparent)]
    Connection(#[from] PoolError),
    /// An actor pool could not start, or the process's caller could not be configured.
    #[error("actor pool at {address}: {reason}")]
    Setup {
        /// The address concerned (empty for the caller configuration).
        address: String,
        /// Why.
        reason: String,
    },
}

/// What a handler, a lifecycle hook or a factory returns when it fails: any error (by `?`,
/// keeping its chain of sources) or a plain message ([`Failure::msg`]). The caller receives it
/// as [`ActorError::Handler`], with the actor's address, process id, type and uid.
///
/// Like `anyhow::Error`, it does not implement [`std::error::Error`] itself, so that every
/// error type converts into it.
pub struct Failure {
    pub(crate) repr: Repr,
}

pub(crate) enum Repr {
    Error(Box<dyn StdError + Send + Sync>),
    Message(String),
    /// The handler handed its reply to [`crate::Context::reply_later`].
    Delegated,
}

impl Failure {
    /// A failure with just a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Failure { repr: Repr::Message(message.to_string()) }
    }

    pub(crate) fn delegated() -> Self {
        Failure { repr: Repr::Delegated }
    }

    /// The message with the chain of sources, `outer: inner: ...`.
    pub fn message(&self) -> String {
        match &self.repr {
            Repr::Message(message) => message.clone(),
            Repr::Delegated => "the reply was handed to reply_later".to_owned(),
            Repr::Error(error) => {
                let mut text = error.to_string();
                let mut source = error.source();
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                text
            }
        }
    }

    pub(crate) fn into_source(self) -> Option<Arc<dyn StdError + Send + Sync>> {
        match self.repr {
            Repr::Error(error) => Some(Arc::from(error)),
            _ => None,
        }
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure { repr: Repr::Error(Box::new(error)) }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Failure({:?})", self.message())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

impl ActorError {
    /// A short, stable name of the variant (`not_found`, `handler`, `call_timed_out`, ...;
    /// a connection error gives the pool's kind, e.g. `connection_lost`), e.g. for a metric
    /// label.
    pub fn kind(&self) -> &'static str {
        match self {
            ActorError::NotFound { .. } => "not_found",
            ActorError::AlreadyExists { .. } => "already_exists",
            ActorError::UnknownType { .. } => "unknown_type",
            ActorError::NoHandler { .. } => "no_handler",
            ActorError::NotRemote { .. } => "not_remote",
            ActorError::BadMessage { .. } => "bad_message",
            ActorError::BadReply { .. } => "bad_reply",
            ActorError::Handler { .. } => "handler",
            ActorError::HandlerPanicked { .. } => "handler_panicked",
            ActorError::CallTimedOut { .. } => "call_timed_out",
            ActorError::Stopped { .. } => "stopped",
            ActorError::Cancelled { .. } => "cancelled",
            ActorError::Buffer { .. } => "buffer",
            ActorError::Placement { .. } => "placement",
            ActorError::WrongType { .. } => "wrong_type",
            ActorError::Forbidden { .. } => "forbidden",
            ActorError::Connection(error) => error.kind(),
            ActorError::Setup { .. } => "setup",
        }
    }
}
