//! The error type of calls, sends and leases.

use std::time::Duration;

use xoscar_transport::TransportError;

use crate::ConfigError;

/// Why a call, a one-way send or a lease failed. Each variant names the endpoint.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// Used outside a tokio runtime: connections belong to the runtime that made them.
    #[error("xoscar-pool needs a tokio runtime: call it from within one")]
    NoRuntime,
    /// The configuration (or an environment variable) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The endpoint could not be dialled (refused, timed out, handshake failed, ...).
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The endpoint.
        address: String,
        /// What the transport said.
        #[source]
        source: std::sync::Arc<TransportError>,
    },
    /// The connection closed or broke (peer closed, reset, protocol error) while the call was
    /// in flight. The next call dials afresh.
    #[error("connection to {address} lost: {reason}")]
    ConnectionLost {
        /// The endpoint.
        address: String,
        /// What happened.
        reason: String,
    },
    /// The connection went silent: a ping got no answer within the heartbeat timeout, so the
    /// peer is presumed dead (e.g. a NAT dropped the session). The next call dials afresh.
    #[error("connection to {address} timed out: nothing received for {silent_for:?}")]
    ConnectionTimedOut {
        /// The endpoint.
        address: String,
        /// How long nothing was received, heartbeat interval plus timeout.
        silent_for: Duration,
    },
    /// The call's own timeout elapsed; a cancel was sent for it.
    #[error("call to {address} timed out after {timeout:?}")]
    CallTimedOut {
        /// The endpoint.
        address: String,
        /// The timeout in force.
        timeout: Duration,
    },
    /// The frame could not be sent (e.g. over the frame limits); the connection is unharmed.
    #[error("cannot send to {address}: {reason}")]
    Send {
        /// The endpoint.
        address: String,
        /// Why.
        reason: String,
    },
}

impl PoolError {
    pub(crate) fn connect(address: &str, source: TransportError) -> Self {
        PoolError::Connect { address: address.to_string(), source: std::sync::Arc::new(source) }
    }
}
