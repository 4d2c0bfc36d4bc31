//! Settings for listeners and dials.

use std::time::Duration;

use xoscar_wire::{AuthToken, Limits};

/// TCP keepalive probing: the kernel's own dead-peer detection for idle TCP connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    idle: Duration,
    interval: Duration,
    retries: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive { idle: Duration::from_secs(30), interval: Duration::from_secs(10), retries: 3 }
    }
}

impl Keepalive {
    /// How long a connection is idle before the first probe (`TCP_KEEPIDLE`). Default: 30 s.
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Time between probes (`TCP_KEEPINTVL`). Default: 10 s.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Unanswered probes before the kernel resets the connection (`TCP_KEEPCNT`). Default: 3.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// See [`Keepalive::idle`].
    pub fn get_idle(&self) -> Duration {
        self.idle
    }

    /// See [`Keepalive::interval`].
    pub fn get_interval(&self) -> Duration {
        self.interval
    }

    /// See [`Keepalive::retries`].
    pub fn get_retries(&self) -> u32 {
        self.retries
    }
}

/// Settings for [`crate::listen`] and [`crate::connect`]. Every field has a default, stated on
/// its builder method.
///
/// ```
/// use std::time::Duration;
/// use xoscar_transport::{Keepalive, TransportConfig};
/// let config = TransportConfig::default()
///     .connect_timeout(Duration::from_secs(2))
///     .keepalive(Some(Keepalive::default().idle(Duration::from_secs(15))));
/// assert_eq!(config.get_connect_timeout(), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) nodelay: bool,
    pub(crate) keepalive: Option<Keepalive>,
    pub(crate) backlog: u32,
    pub(crate) limits: Limits,
    pub(crate) inproc_capacity: usize,
    pub(crate) write_high_water: usize,
    pub(crate) auth_token: Option<AuthToken>,
    pub(crate) unix_socket_mode: u32,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::Tls>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            nodelay: true,
            keepalive: Some(Keepalive::default()),
            backlog: 1024,
            limits: Limits::default(),
            inproc_capacity: 128,
            write_high_water: 256 * 1024,
            auth_token: None,
            unix_socket_mode: 0o600,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl TransportConfig {
    /// The longest a dial may take, handshake included, before
    /// [`crate::TransportError::ConnectTimedOut`]. Default: 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest an accepted peer may take to send its handshake before
    /// [`crate::TransportError::HandshakeTimedOut`]. Default: 10 s.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// `TCP_NODELAY` on TCP sockets, so small frames leave at once. Default: `true`.
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// TCP keepalive on every TCP socket, `None` to leave the kernel's setting.
    /// Default: on, [`Keepalive::default`] (30 s idle, 10 s interval, 3 probes).
    pub fn keepalive(mut self, keepalive: Option<Keepalive>) -> Self {
        self.keepalive = keepalive;
        self
    }

    /// The accept backlog of TCP and Unix listeners, and the number of dials an in-process
    /// listener queues before [`crate::TransportError::ListenerBusy`]. Default: 1024.
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog.max(1);
        self
    }

    /// Frame size limits, enforced on both reading and writing. Default: [`Limits::default`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Frames an in-process channel holds per direction before a sender waits. Default: 128.
    pub fn inproc_capacity(mut self, frames: usize) -> Self {
        self.inproc_capacity = frames.max(1);
        self
    }

    /// Bytes a [`crate::FrameWriter`] buffers from [`crate::FrameWriter::feed`] before it
    /// writes without waiting for [`crate::FrameWriter::flush`]. Default: 256 KiB.
    pub fn write_high_water(mut self, bytes: usize) -> Self {
        self.write_high_water = bytes;
        self
    }

    /// A shared secret both ends of every TCP and Unix-socket connection must prove they know
    /// (HMAC challenge–response in the handshake; the secret is never sent). A peer that
    /// cannot is refused with [`crate::TransportError::AuthFailed`] before any frame is read,
    /// and so is a peer that authenticates when this end has no secret. In-process channels
    /// do not authenticate: both ends are this process. Where it is not set here,
    /// `XOSCAR_AUTH_TOKEN` fills it for callers (`PoolConfig::resolve`) and for actor pools'
    /// listeners (`ActorPoolBuilder::start`); a listener made with [`crate::listen`] directly
    /// uses only this setting. Default: none.
    pub fn auth_token(mut self, token: Option<AuthToken>) -> Self {
        self.auth_token = token;
        self
    }

    /// The permission bits of a Unix socket file a listener creates, set before it accepts
    /// any dial: who on this host may connect. Default: `0o600`, only this user (which is
    /// what sub pools and the other pools of one user need).
    pub fn unix_socket_mode(mut self, mode: u32) -> Self {
        self.unix_socket_mode = mode & 0o777;
        self
    }

    /// TLS on every TCP listener and dial (feature `tls`): listeners serve this end's
    /// certificate (and may require the dialer's), dials check the server's. Our handshake,
    /// authentication included, runs inside the TLS session. Unix sockets and in-process
    /// channels stay as they are (they do not leave the host). Default: none.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: Option<crate::Tls>) -> Self {
        self.tls = tls;
        self
    }

    /// See [`TransportConfig::auth_token`].
    pub fn get_auth_token(&self) -> Option<&AuthToken> {
        self.auth_token.as_ref()
    }

    /// See [`TransportConfig::connect_timeout`].
    pub fn get_connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// See [`TransportConfig::handshake_timeout`].
    pub fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// See [`TransportConfig::limits`].
    pub fn get_limits(&self) -> &Limits {
        &self.limits
    }

    /// See [`TransportConfig::keepalive`].
    pub fn get_keepalive(&self) -> Option<Keepalive> {
        self.keepalive
    }
}
