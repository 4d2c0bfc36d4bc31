//! Listening, accepting and dialling, dispatched on the address's transport.

use std::sync::Arc;

#[cfg(any(feature = "tcp", feature = "uds"))]
use crate::channel::{FrameReader, FrameWriter, ReaderKind, WriterKind};
#[cfg(any(feature = "tcp", feature = "uds"))]
use crate::stream::{self, BoxRead, BoxWrite, StreamReader, StreamWriter};
use crate::{Address, Channel, TransportConfig, TransportError};
#[cfg(any(feature = "tcp", feature = "uds"))]
use xoscar_wire::AuthRole;

/// Accepts dials on one address. For Unix sockets, dropping it removes the socket file; for
/// in-process listeners, it frees the name.
pub struct Listener {
    kind: ListenerKind,
    local: Address,
    #[cfg_attr(not(feature = "tcp"), allow(dead_code))]
    config: Arc<TransportConfig>,
}

enum ListenerKind {
    #[cfg(feature = "tcp")]
    Tcp(tokio::net::TcpListener),
    #[cfg(feature = "uds")]
    Unix(tokio::net::UnixListener, #[allow(dead_code)] crate::unix::SocketFile),
    #[cfg(feature = "inproc")]
    Inproc(crate::inproc::Listener),
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("local", &self.local).finish_non_exhaustive()
    }
}

/// A dial that was accepted but has not finished its handshake yet.
///
/// [`Listener::accept`] returns as soon as a peer connects; run [`Incoming::handshake`] in the
/// connection's own task, so a slow or silent peer never holds up the accept loop.
pub struct Incoming {
    kind: IncomingKind,
    peer: Arc<str>,
    /// The dialling process, as the kernel reports it (`SO_PEERCRED`), for Unix sockets.
    peer_pid: Option<u32>,
    #[cfg_attr(not(any(feature = "tcp", feature = "uds")), allow(dead_code))]
    config: Arc<TransportConfig>,
}

enum IncomingKind {
    #[cfg(any(feature = "tcp", feature = "uds"))]
    Stream(BoxRead, BoxWrite),
    /// A TCP connection whose TLS handshake, with this server configuration, is to come.
    #[cfg(feature = "tls")]
    Tls(tokio::net::TcpStream, Arc<rustls::ServerConfig>),
    #[cfg(feature = "inproc")]
    Inproc(crate::inproc::Pending),
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming").field("peer", &self.peer).finish_non_exhaustive()
    }
}

/// Starts listening on `address`. Port 0 picks a free port: [`Listener::local_addr`] tells
/// which. A stale Unix socket file (nobody accepting on it) is replaced.
pub async fn listen(
    address: &Address,
    config: &TransportConfig,
) -> Result<Listener, TransportError> {
    let config = Arc::new(config.clone());
    let (kind, local) = match address {
        #[cfg(feature = "tcp")]
        Address::Tcp { host, port } => {
            let label = address.to_string();
            #[cfg(feature = "tls")]
            if config.tls.as_ref().is_some_and(|tls| tls.server().is_none()) {
                return Err(TransportError::Tls {
                    peer: label,
                    reason: "TLS is on but this end has no certificate to serve \
                             (TlsConfig::identity)"
                        .to_owned(),
                });
            }
            let (listener, local) = crate::tcp::bind(host, *port, &label, &config).await?;
            (ListenerKind::Tcp(listener), Address::tcp(local))
        }
        #[cfg(feature = "uds")]
        Address::Unix(path) => {
            let (listener, file) = crate::unix::bind(path, &address.to_string(), &config)?;
            (ListenerKind::Unix(listener, file), address.clone())
        }
        #[cfg(feature = "inproc")]
        Address::Inproc(name) => {
            (ListenerKind::Inproc(crate::inproc::Listener::bind(name, &config)?), address.clone())
        }
        #[allow(unreachable_patterns)]
        _ => return Err(unsupported(address)),
    };
    tracing::debug!(address = %local, "listening");
    Ok(Listener { kind, local, config })
}

/// Dials `address` and performs the handshake, all within the configured connect timeout.
///
/// Errors: [`TransportError::ConnectionRefused`] (nobody listens),
/// [`TransportError::ConnectTimedOut`], [`TransportError::ListenerBusy`] (Unix and in-process
/// listener with a full backlog), [`TransportError::Handshake`] (not an xoscar-rs peer, or
/// another protocol version).
pub async fn connect(
    address: &Address,
    config: &TransportConfig,
) -> Result<Channel, TransportError> {
    let label: Arc<str> = address.to_string().into();
    match tokio::time::timeout(config.connect_timeout, dial(address, config, label.clone())).await {
        Ok(result) => result,
        Err(_elapsed) => Err(TransportError::ConnectTimedOut {
            address: label.to_string(),
            timeout: config.connect_timeout,
        }),
    }
}

#[cfg_attr(not(any(feature = "tcp", feature = "uds")), allow(unused_variables))]
async fn dial(
    address: &Address,
    config: &TransportConfig,
    label: Arc<str>,
) -> Result<Channel, TransportError> {
    match address {
        #[cfg(feature = "tcp")]
        Address::Tcp { host, port } => {
            let stream = crate::tcp::dial(host, *port, &label, config).await?;
            #[cfg(feature = "tls")]
            if let Some(tls) = &config.tls {
                let (read, write) =
                    crate::tls::connect(stream, tls, &host.to_string(), &label).await?;
                return establish(read, write, config, label, AuthRole::Dialer).await;
            }
            let (read, write) = crate::tcp::split(stream);
            establish(read, write, config, label, AuthRole::Dialer).await
        }
        #[cfg(feature = "uds")]
        Address::Unix(path) => {
            let (read, write) = crate::unix::split(crate::unix::dial(path, &label).await?);
            establish(read, write, config, label, AuthRole::Dialer).await
        }
        #[cfg(feature = "inproc")]
        Address::Inproc(name) => {
            let halves = crate::inproc::connect(name, config).await?;
            Ok(Channel::inproc(halves, address.to_string().into()))
        }
        #[allow(unreachable_patterns)]
        _ => Err(unsupported(address)),
    }
}

/// Handshakes over a fresh byte stream and wraps it into a channel.
#[cfg(any(feature = "tcp", feature = "uds"))]
async fn establish(
    read: BoxRead,
    mut write: BoxWrite,
    config: &TransportConfig,
    peer: Arc<str>,
    role: AuthRole,
) -> Result<Channel, TransportError> {
    let mut reader = StreamReader::new(read, config.limits);
    let token = config.auth_token.as_ref();
    let theirs = stream::handshake(&mut reader, &mut write, &peer, role, token).await?;
    Ok(Channel::new(
        FrameReader::new(ReaderKind::Stream(reader), peer.clone()),
        FrameWriter::new(WriterKind::Stream(StreamWriter::new(write, config)), peer),
        Some(theirs.hello),
    ))
}

/// An accepted TCP connection: its TLS handshake, if the listener has TLS, is left to
/// `Incoming::handshake`, under its timeout, so the accept loop never waits on one.
#[cfg(feature = "tcp")]
fn tcp_incoming(stream: tokio::net::TcpStream, config: &TransportConfig) -> IncomingKind {
    #[cfg(feature = "tls")]
    if let Some(server) = config.tls.as_ref().and_then(crate::Tls::server) {
        return IncomingKind::Tls(stream, server.clone());
    }
    let _ = config;
    let (read, write) = crate::tcp::split(stream);
    IncomingKind::Stream(read, write)
}

/// `handshake` under the accepting side's handshake timeout.
#[cfg(any(feature = "tcp", feature = "uds"))]
async fn within_handshake_timeout(
    config: &TransportConfig,
    peer: Arc<str>,
    handshake: impl Future<Output = Result<Channel, TransportError>>,
) -> Result<Channel, TransportError> {
    let timeout = config.handshake_timeout;
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| TransportError::HandshakeTimedOut { peer: peer.to_string(), timeout })?
}

#[allow(dead_code)] // unused when every transport is compiled in
fn unsupported(address: &Address) -> TransportError {
    let feature = match address {
        Address::Tcp { .. } => "tcp",
        Address::Unix(_) => "uds",
        Address::Inproc(_) => "inproc",
    };
    TransportError::Unsupported { address: address.to_string(), feature }
}

impl Listener {
    /// The address dials reach this listener at (with the real port when port 0 was asked).
    pub fn local_addr(&self) -> &Address {
        &self.local
    }

    /// Waits for the next dial. Cancel safe.
    ///
    /// An error here concerns one dial (or a passing condition such as running out of
    /// descriptors); the listener stays usable.
    pub async fn accept(&mut self) -> Result<Incoming, TransportError> {
        #[cfg(any(feature = "tcp", feature = "uds"))]
        let accept_err = |source| TransportError::Io {
            operation: "accept on",
            address: self.local.to_string(),
            source,
        };
        let (kind, peer, peer_pid): (IncomingKind, Arc<str>, Option<u32>) = match &mut self.kind {
            #[cfg(feature = "tcp")]
            ListenerKind::Tcp(listener) => {
                let (stream, peer) = listener.accept().await.map_err(accept_err)?;
                crate::tcp::tune(&stream, &self.config).map_err(accept_err)?;
                (tcp_incoming(stream, &self.config), Address::tcp(peer).to_string().into(), None)
            }
            #[cfg(feature = "uds")]
            ListenerKind::Unix(listener, _) => {
                let (stream, _unnamed) = listener.accept().await.map_err(accept_err)?;
                let pid = stream.peer_cred().ok().and_then(|cred| cred.pid());
                let pid = pid.and_then(|pid| u32::try_from(pid).ok());
                let (read, write) = crate::unix::split(stream);
                (IncomingKind::Stream(read, write), format!("peer of {}", self.local).into(), pid)
            }
            #[cfg(feature = "inproc")]
            ListenerKind::Inproc(listener) => (
                IncomingKind::Inproc(listener.accept().await),
                format!("peer of {}", self.local).into(),
                None,
            ),
        };
        Ok(Incoming { kind, peer, peer_pid, config: self.config.clone() })
    }
}

impl Incoming {
    /// What is known of the peer: its TCP address, or for Unix and in-process peers the
    /// listener's address.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The process id of a Unix-socket peer, as the kernel reports it (`SO_PEERCRED`): who
    /// dialled, which the peer cannot forge. `None` for TCP and in-process peers.
    pub fn peer_pid(&self) -> Option<u32> {
        self.peer_pid
    }

    /// Exchanges handshakes (sending ours even when the peer's is wrong, so that it sees a
    /// clear error too) within the configured handshake timeout. In-process channels have no
    /// handshake: both ends are the same build.
    pub async fn handshake(self) -> Result<Channel, TransportError> {
        match self.kind {
            #[cfg(any(feature = "tcp", feature = "uds"))]
            IncomingKind::Stream(read, write) => {
                let (config, peer) = (self.config, self.peer);
                within_handshake_timeout(&config, peer.clone(), async {
                    establish(read, write, &config, peer, AuthRole::Acceptor).await
                })
                .await
            }
            #[cfg(feature = "tls")]
            IncomingKind::Tls(stream, server) => {
                let (config, peer) = (self.config, self.peer);
                within_handshake_timeout(&config, peer.clone(), async {
                    let (read, write) = crate::tls::accept(stream, server, &peer).await?;
                    establish(read, write, &config, peer, AuthRole::Acceptor).await
                })
                .await
            }
            #[cfg(feature = "inproc")]
            IncomingKind::Inproc(pending) => Ok(Channel::inproc(pending.accept(), self.peer)),
        }
    }
}
