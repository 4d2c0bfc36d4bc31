//! The error type of calls, one-way sends, leases and servers.

use std::sync::Arc;
use std::time::Duration;

use xoscar_transport::TransportError;
use xoscar_wire::WireError;

use crate::ConfigError;

/// Why a call, a one-way send, a lease or [`crate::serve`] failed. Each variant that concerns
/// an endpoint names it.
///
/// [`PoolError::is_retry_safe`] tells whether the request certainly never reached a handler
/// (so sending it again cannot run it twice), in the spirit of h2's `REFUSED_STREAM`.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// Used outside a tokio runtime: connections and servers belong to the runtime that made
    /// them.
    #[error("xoscar-pool needs a tokio runtime: call it from within one")]
    NoRuntime,
    /// The configuration (or an environment variable) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The endpoint could not be dialled (refused, timed out, handshake failed, ...). Nothing
    /// was sent.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The endpoint.
        address: String,
        /// What the transport said.
        #[source]
        source: Arc<TransportError>,
    },
    /// The dial ended without a result: its task was dropped (the runtime is shutting down) or
    /// panicked (for example on a runtime built without `enable_time`). Nothing was sent.
    #[error(
        "the dial to {address} ended without a result: its runtime is shutting down, or it \
         panicked (a runtime needs both enable_io and enable_time)"
    )]
    DialAborted {
        /// The endpoint.
        address: String,
    },
    /// The connection closed or broke (peer closed, reset, protocol error) before the answer
    /// arrived. The next call dials afresh.
    #[error("connection to {address} lost ({}): {reason}", sent_text(*.sent))]
    ConnectionLost {
        /// The endpoint.
        address: String,
        /// What happened.
        reason: String,
        /// Whether the request (or one-way message) may have been written to the connection.
        /// `false`: it never left this process, so sending it again cannot run it twice.
        sent: bool,
        /// The transport error behind it, when there is one.
        #[source]
        source: Option<Arc<TransportError>>,
    },
    /// The connection went silent: a ping got no answer within the heartbeat timeout, so the
    /// peer is presumed dead (e.g. a NAT dropped the session). The next call dials afresh.
    #[error("connection to {address} timed out ({}): nothing received for {silent_for:?}", sent_text(*.sent))]
    ConnectionTimedOut {
        /// The endpoint.
        address: String,
        /// How long nothing was received when the verdict fell.
        silent_for: Duration,
        /// As in [`PoolError::ConnectionLost`].
        sent: bool,
    },
    /// The call's own timeout elapsed; a cancel was sent for it. The handler may have run.
    #[error("call to {address} timed out after {timeout:?}")]
    CallTimedOut {
        /// The endpoint.
        address: String,
        /// The timeout in force.
        timeout: Duration,
    },
    /// The call was cancelled explicitly ([`crate::Pool::call_cancellable`]) and its handler
    /// stopped without answering: it was dropped where it waited, or never ran.
    #[error("call to {address} cancelled ({})", sent_text(*.sent))]
    Cancelled {
        /// The endpoint.
        address: String,
        /// False when the request was never written (the cancel came first).
        sent: bool,
    },
    /// The server refused the request before any handler saw it (a response stream over its
    /// limit of open streams, `max_in_flight`). Safe to send again once streams have ended.
    #[error("{address} refused the request: {reason}")]
    Refused {
        /// The endpoint.
        address: String,
        /// Why.
        reason: &'static str,
    },
    /// The message breaks the frame limits (too large, too many payloads); it was not sent
    /// and the connection is unharmed.
    #[error("message to {address} refused before sending: {source}")]
    MessageTooLarge {
        /// The endpoint.
        address: String,
        /// Which limit it breaks.
        #[source]
        source: Arc<WireError>,
    },
    /// The handler's answer (or an item of its response stream) broke the server's frame
    /// limits, so the server did not send it: this call alone failed (a stream ends here),
    /// and the connection and every other call on it go on. The handler ran.
    #[error("the answer from {address} was not sent: {reason}")]
    ResponseTooLarge {
        /// The endpoint.
        address: String,
        /// Which limit it broke, as the server said.
        reason: String,
    },
    /// The remote handler panicked while answering this call. The connection and every other
    /// call on it go on.
    #[error("the handler at {address} panicked{}", panic_text(.message))]
    HandlerPanicked {
        /// The endpoint.
        address: String,
        /// The panic message, when it was a string.
        message: Option<String>,
    },
    /// The server could not start.
    #[error("cannot serve on {address}: {reason}")]
    Serve {
        /// The listener's address.
        address: String,
        /// Why.
        reason: &'static str,
    },
}

/// Why [`crate::Responder::send_item`] could not send an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The request did not open a response stream: answer it with `respond`.
    #[error("the request did not open a response stream")]
    NotAStream,
    /// The caller dropped or cancelled the stream, or its connection ended: stop producing.
    #[error("the caller no longer takes items of this stream")]
    Cancelled,
    /// The item broke the server's frame limits: it was not sent, and the stream was ended
    /// with that error for the caller ([`PoolError::ResponseTooLarge`]). Stop producing.
    #[error("the item breaks the frame limits; the stream was ended")]
    TooLarge,
}

fn sent_text(sent: bool) -> &'static str {
    if sent { "the request may have been handled" } else { "the request was never sent" }
}

fn panic_text(message: &Option<String>) -> String {
    message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
}

impl PoolError {
    /// A short, stable name of the variant (`connection_lost`, `connection_timed_out`, ...),
    /// e.g. for a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            PoolError::NoRuntime => "no_runtime",
            PoolError::Config(_) => "config",
            PoolError::Connect { .. } => "connect",
            PoolError::DialAborted { .. } => "dial_aborted",
            PoolError::ConnectionLost { .. } => "connection_lost",
            PoolError::ConnectionTimedOut { .. } => "connection_timed_out",
            PoolError::CallTimedOut { .. } => "call_timed_out",
            PoolError::Cancelled { .. } => "cancelled",
            PoolError::Refused { .. } => "refused",
            PoolError::MessageTooLarge { .. } => "message_too_large",
            PoolError::HandlerPanicked { .. } => "handler_panicked",
            PoolError::ResponseTooLarge { .. } => "response_too_large",
            PoolError::Serve { .. } => "serve",
        }
    }

    /// The endpoint (or listener) the error concerns, when it names one.
    pub fn address(&self) -> Option<&str> {
        match self {
            PoolError::NoRuntime | PoolError::Config(_) => None,
            PoolError::Connect { address, .. }
            | PoolError::DialAborted { address }
            | PoolError::ConnectionLost { address, .. }
            | PoolError::ConnectionTimedOut { address, .. }
            | PoolError::CallTimedOut { address, .. }
            | PoolError::Cancelled { address, .. }
            | PoolError::Refused { address, .. }
            | PoolError::MessageTooLarge { address, .. }
            | PoolError::HandlerPanicked { address, .. }
            | PoolError::ResponseTooLarge { address, .. }
            | PoolError::Serve { address, .. } => Some(address),
        }
    }

    /// True when the request (or one-way message) certainly never reached a handler, so
    /// sending it again cannot run it twice: a failed dial, a message over the limits, or a
    /// connection that ended before the request was written. False when it may have run
    /// (the connection broke after it was written, a timeout, a panicking handler).
    ///
    /// [`crate::Pool::call`] and [`crate::Pool::notify`] already re-send, on a fresh
    /// connection, what a connection ended before writing; this matters for what they still
    /// return, and for [`crate::Lease`] calls, which never switch connections.
    pub fn is_retry_safe(&self) -> bool {
        match self {
            PoolError::NoRuntime
            | PoolError::Config(_)
            | PoolError::Connect { .. }
            | PoolError::DialAborted { .. }
            | PoolError::MessageTooLarge { .. }
            | PoolError::Refused { .. }
            | PoolError::Serve { .. } => true,
            PoolError::ConnectionLost { sent, .. }
            | PoolError::ConnectionTimedOut { sent, .. }
            | PoolError::Cancelled { sent, .. } => !sent,
            PoolError::CallTimedOut { .. }
            | PoolError::HandlerPanicked { .. }
            | PoolError::ResponseTooLarge { .. } => false,
        }
    }

    pub(crate) fn connect(address: &str, source: TransportError) -> Self {
        PoolError::Connect { address: address.to_string(), source: Arc::new(source) }
    }

    /// A message to `address` over the frame limits (`source` says which), refused before
    /// anything of it was sent.
    pub(crate) fn too_large(address: &str, source: xoscar_wire::WireError) -> Self {
        PoolError::MessageTooLarge { address: address.to_string(), source: Arc::new(source) }
    }
}
