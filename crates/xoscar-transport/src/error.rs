//! The one error type of this crate.

use std::io;
use std::time::Duration;

use xoscar_wire::WireError;

use crate::AddressError;

/// Why a listener, a dial or a channel failed. Each variant names the address or peer involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The text was not an address.
    #[error(transparent)]
    InvalidAddress(#[from] AddressError),
    /// The address's transport was not compiled in (its cargo feature is off).
    #[error("cannot use {address}: the `{feature}` feature of xoscar-transport is off")]
    Unsupported {
        /// The address.
        address: String,
        /// The cargo feature that would enable it.
        feature: &'static str,
    },
    /// Nobody listens there: TCP RST, no Unix socket file (or a stale one), no in-process
    /// listener by that name.
    #[error("connection refused by {address}")]
    ConnectionRefused {
        /// The address dialled.
        address: String,
    },
    /// The connection was not established (dial and handshake) within the connect timeout.
    #[error("connecting to {address} timed out after {timeout:?}")]
    ConnectTimedOut {
        /// The address dialled.
        address: String,
        /// The timeout in force.
        timeout: Duration,
    },
    /// The listener's accept backlog is full and the platform refuses at once instead of
    /// queueing the dial: Unix sockets (`EAGAIN`) and in-process listeners. A TCP dial to a
    /// full backlog is not refused by Linux (the SYN is dropped) and ends in
    /// [`TransportError::ConnectTimedOut`].
    #[error("the listener at {address} is busy: its accept backlog is full")]
    ListenerBusy {
        /// The address dialled.
        address: String,
    },
    /// Another listener holds the address.
    #[error("cannot listen on {address}: {reason}")]
    AddressInUse {
        /// The address.
        address: String,
        /// Who holds it.
        reason: &'static str,
    },
    /// The handshake failed: the peer is not an xoscar-rs peer or speaks another version.
    #[error("handshake with {peer} failed: {source}")]
    Handshake {
        /// The peer.
        peer: String,
        /// What was wrong.
        #[source]
        source: WireError,
    },
    /// The peer did not prove it knows our shared secret, proved one when we have none, or
    /// asked for a proof we cannot give ([`crate::TransportConfig::auth_token`]).
    #[error("authentication with {peer} failed: {reason}")]
    AuthFailed {
        /// The peer.
        peer: String,
        /// What was wrong, in words an operator can act on.
        reason: &'static str,
    },
    /// The TLS handshake failed: an untrusted or mismatched certificate, a missing client
    /// certificate, a peer that does not speak TLS, or TLS settings that cannot serve this
    /// role.
    #[error("TLS with {peer} failed: {reason}")]
    Tls {
        /// The peer.
        peer: String,
        /// What rustls (or the settings) said.
        reason: String,
    },
    /// An accepted peer did not complete its handshake within the handshake timeout.
    #[error("handshake with {peer} timed out after {timeout:?}")]
    HandshakeTimedOut {
        /// The peer.
        peer: String,
        /// The timeout in force.
        timeout: Duration,
    },
    /// The peer sent bytes that are not valid frames (or a frame was too large to send);
    /// the channel cannot continue.
    #[error("protocol error on the connection with {peer}: {source}")]
    Protocol {
        /// The peer.
        peer: String,
        /// What was wrong.
        #[source]
        source: WireError,
    },
    /// The connection broke: reset, broken pipe, or the in-process peer is gone.
    #[error("connection with {peer} lost: {reason}")]
    ConnectionLost {
        /// The peer.
        peer: String,
        /// What the operating system (or channel) said.
        reason: String,
    },
    /// Any other I/O failure.
    #[error("{operation} {address} failed: {source}")]
    Io {
        /// What was being done (`connect to`, `listen on`, `accept on`, ...).
        operation: &'static str,
        /// The address or peer.
        address: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl TransportError {
    /// Classifies an I/O error on an established channel.
    #[cfg(any(feature = "tcp", feature = "uds"))]
    pub(crate) fn from_channel_io(peer: &str, error: io::Error) -> Self {
        use io::ErrorKind::*;
        match error.kind() {
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
                TransportError::ConnectionLost { peer: peer.to_string(), reason: error.to_string() }
            }
            _ => TransportError::Io {
                operation: "I/O with",
                address: peer.to_string(),
                source: error,
            },
        }
    }

    /// Classifies an I/O error from a dial.
    #[cfg(any(feature = "tcp", feature = "uds"))]
    pub(crate) fn from_connect_io(address: &str, error: io::Error) -> Self {
        use io::ErrorKind::*;
        match error.kind() {
            ConnectionRefused | NotFound => {
                TransportError::ConnectionRefused { address: address.to_string() }
            }
            WouldBlock => TransportError::ListenerBusy { address: address.to_string() },
            _ => TransportError::Io {
                operation: "connect to",
                address: address.to_string(),
                source: error,
            },
        }
    }
}
