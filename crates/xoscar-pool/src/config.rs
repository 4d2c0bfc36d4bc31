//! Settings of the caller-side pool and of the serving side, with environment overrides.
//!
//! Precedence, for each setting: an explicit builder call, then the environment variable, then
//! the default. Environment values are seconds, fractions allowed (`0.25`); a value that is not
//! a finite, non-negative number is a [`ConfigError`] naming the variable, never ignored.

use std::time::Duration;

use xoscar_transport::{AuthToken, TransportConfig};

/// `XOSCAR_IDLE_TIMEOUT`: seconds a connection may hold no lease before the pool closes it;
/// `0` turns reaping off.
pub const ENV_IDLE_TIMEOUT: &str = "XOSCAR_IDLE_TIMEOUT";
/// `XOSCAR_HEARTBEAT_INTERVAL`: seconds of silence, while a lease is held, before a ping.
pub const ENV_HEARTBEAT_INTERVAL: &str = "XOSCAR_HEARTBEAT_INTERVAL";
/// `XOSCAR_HEARTBEAT_TIMEOUT`: seconds to wait for any frame after a ping before the
/// connection is declared dead.
pub const ENV_HEARTBEAT_TIMEOUT: &str = "XOSCAR_HEARTBEAT_TIMEOUT";
/// `XOSCAR_CONNECT_TIMEOUT`: seconds a dial (handshake included) may take.
pub const ENV_CONNECT_TIMEOUT: &str = "XOSCAR_CONNECT_TIMEOUT";
/// `XOSCAR_SERVER_IDLE_TIMEOUT`: seconds a server connection may have no request in flight and
/// receive nothing before the server closes it; `0` turns it off.
pub const ENV_SERVER_IDLE_TIMEOUT: &str = "XOSCAR_SERVER_IDLE_TIMEOUT";

/// `XOSCAR_AUTH_TOKEN`: the shared secret every TCP and Unix-socket connection must prove
/// (`TransportConfig::auth_token`), for callers ([`PoolConfig::resolve`]) and for pools that
/// read it (the actor layer's pools and sub pools). At least 16 bytes; its bytes are the key.
pub const ENV_AUTH_TOKEN: &str = "XOSCAR_AUTH_TOKEN";

/// The token in `XOSCAR_AUTH_TOKEN` (its bytes, Unicode or not): `Ok(None)` when unset, an
/// error naming the variable when it is shorter than `MIN_AUTH_TOKEN_LEN` (16) bytes.
pub fn env_auth_token() -> Result<Option<AuthToken>, ConfigError> {
    use std::os::unix::ffi::OsStrExt;
    let Some(value) = std::env::var_os(ENV_AUTH_TOKEN) else { return Ok(None) };
    AuthToken::new(value.as_bytes()).map(Some).map_err(|error| ConfigError::InvalidEnv {
        var: ENV_AUTH_TOKEN,
        // Never the secret itself, even a bad one.
        value: format!("<{} bytes>", value.len()),
        reason: match error {
            xoscar_transport::BadAuthToken::TooShort(_) => {
                "shorter than 16 bytes: too easy to guess"
            }
            _ => "not a usable secret",
        },
    })
}

/// A setting could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable holds something that is not a duration in seconds.
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A builder value is out of range.
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        /// The builder method.
        setting: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The longest any duration setting may be: 100 years. Longer values (`Duration::MAX`, say)
/// would overflow the clock arithmetic of the reaper, the heartbeat and the idle watches, so
/// they are refused when the configuration is resolved rather than panicking later. (To turn
/// an idle timeout off, set it to zero.)
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Refuses a builder duration over [`MAX_DURATION`].
fn at_most_max(setting: &'static str, value: Duration) -> Result<Duration, ConfigError> {
    if value > MAX_DURATION {
        return Err(ConfigError::Invalid { setting, reason: "longer than 100 years" });
    }
    Ok(value)
}

/// Reads the environment variable `var` as a duration in seconds (a decimal number, e.g.
/// `0.25`). `Ok(None)` when unset; a value that is not a finite, non-negative number of at
/// most [`MAX_DURATION`] is [`ConfigError::InvalidEnv`] naming the variable. Shared by every
/// layer's `XOSCAR_*` settings.
pub fn env_seconds(var: &'static str) -> Result<Option<Duration>, ConfigError> {
    let Ok(value) = std::env::var(var) else { return Ok(None) };
    let invalid = |reason| ConfigError::InvalidEnv { var, value: value.clone(), reason };
    let seconds: f64 = value.trim().parse().map_err(|_| invalid("not a number of seconds"))?;
    if !seconds.is_finite() {
        return Err(invalid("not a finite number"));
    }
    if seconds < 0.0 {
        return Err(invalid("negative"));
    }
    if seconds > MAX_DURATION.as_secs_f64() {
        return Err(invalid("too large (over 100 years)"));
    }
    Duration::try_from_secs_f64(seconds).map(Some).map_err(|_| invalid("too large"))
}

/// Settings of a [`crate::Pool`]. Build one with [`PoolConfig::default`] and the builder
/// methods; each states its default and its environment variable.
///
/// ```
/// use std::time::Duration;
/// use xoscar_pool::PoolConfig;
/// let config = PoolConfig::default().idle_timeout(Duration::from_secs(5));
/// let resolved = config.resolve().unwrap();
/// assert_eq!(resolved.idle_timeout(), Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct PoolConfig {
    idle_timeout: Option<Duration>,
    heartbeat_interval: Option<Duration>,
    heartbeat_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    call_timeout: Option<Duration>,
    max_queued_bytes: Option<usize>,
    transport: Option<TransportConfig>,
}

/// Default of [`PoolConfig::max_queued_bytes`].
const DEFAULT_MAX_QUEUED_BYTES: usize = 16 << 20;

impl PoolConfig {
    /// Close a connection once it has held no lease for this long; `Duration::ZERO` turns
    /// reaping off. Default: 30 s, or `XOSCAR_IDLE_TIMEOUT`.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// While a lease is held and nothing was received for this long, ping. Must be above zero.
    /// Default: 5 s, or `XOSCAR_HEARTBEAT_INTERVAL`.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = Some(interval);
        self
    }

    /// After a ping, declare the connection dead if no frame arrives within this. Must be above
    /// zero. Default: 15 s, or `XOSCAR_HEARTBEAT_TIMEOUT`.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = Some(timeout);
        self
    }

    /// The longest a dial, handshake included, may take. Must be above zero. Default: 10 s, or
    /// `XOSCAR_CONNECT_TIMEOUT`. Overrides the transport config's connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// A timeout for every call that does not set its own. Default: none.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = Some(timeout);
        self
    }

    /// Per connection, the bytes (headers and payloads) of requests and one-way messages
    /// waiting to be written; at the bound, calls and one-way sends wait for room, so a peer
    /// that does not read cannot make the caller's memory grow. A message is let in while the
    /// queue is below the bound, so one larger than the bound still goes (alone). Must be above
    /// zero. Default: 16 MiB.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = Some(bytes);
        self
    }

    /// Socket and framing settings. Default: [`TransportConfig::default`], with the auth token
    /// from `XOSCAR_AUTH_TOKEN` when it sets none.
    pub fn transport(mut self, transport: TransportConfig) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Applies the environment and the defaults, and checks the result.
    pub fn resolve(&self) -> Result<ResolvedPoolConfig, ConfigError> {
        let idle =
            pick("idle_timeout", self.idle_timeout, ENV_IDLE_TIMEOUT, Duration::from_secs(30))?;
        let interval = positive(
            "heartbeat_interval",
            pick(
                "heartbeat_interval",
                self.heartbeat_interval,
                ENV_HEARTBEAT_INTERVAL,
                Duration::from_secs(5),
            )?,
        )?;
        let timeout = positive(
            "heartbeat_timeout",
            pick(
                "heartbeat_timeout",
                self.heartbeat_timeout,
                ENV_HEARTBEAT_TIMEOUT,
                Duration::from_secs(15),
            )?,
        )?;
        let connect = positive(
            "connect_timeout",
            pick(
                "connect_timeout",
                self.connect_timeout,
                ENV_CONNECT_TIMEOUT,
                Duration::from_secs(10),
            )?,
        )?;
        let mut transport = self.transport.clone().unwrap_or_default().connect_timeout(connect);
        if transport.get_auth_token().is_none() {
            transport = transport.auth_token(env_auth_token()?);
        }
        let max_queued_bytes = self.max_queued_bytes.unwrap_or(DEFAULT_MAX_QUEUED_BYTES);
        if max_queued_bytes == 0 {
            return Err(ConfigError::Invalid {
                setting: "max_queued_bytes",
                reason: "must be above zero",
            });
        }
        Ok(ResolvedPoolConfig {
            idle_timeout: (!idle.value.is_zero()).then_some(idle.value),
            heartbeat_interval: interval,
            heartbeat_timeout: timeout,
            call_timeout: self.call_timeout,
            max_queued_bytes,
            transport,
        })
    }
}

/// A resolved duration and, when it came from the environment, the variable and its text.
struct Picked {
    value: Duration,
    from_env: Option<(&'static str, String)>,
}

/// Explicit setting, else the environment, else the default.
fn pick(
    setting: &'static str,
    explicit: Option<Duration>,
    var: &'static str,
    default: Duration,
) -> Result<Picked, ConfigError> {
    if let Some(value) = explicit {
        return Ok(Picked { value: at_most_max(setting, value)?, from_env: None });
    }
    match env_seconds(var)? {
        Some(value) => {
            Ok(Picked { value, from_env: Some((var, std::env::var(var).unwrap_or_default())) })
        }
        None => Ok(Picked { value: default, from_env: None }),
    }
}

/// Refuses zero, blaming the variable when the zero came from the environment.
fn positive(setting: &'static str, picked: Picked) -> Result<Duration, ConfigError> {
    if !picked.value.is_zero() {
        return Ok(picked.value);
    }
    Err(match picked.from_env {
        Some((var, value)) => ConfigError::InvalidEnv { var, value, reason: "must be above zero" },
        None => ConfigError::Invalid { setting, reason: "must be above zero" },
    })
}

/// A [`PoolConfig`] with the environment and defaults applied.
#[derive(Debug, Clone)]
pub struct ResolvedPoolConfig {
    idle_timeout: Option<Duration>,
    heartbeat_interval: Duration,
    heartbeat_timeout: Duration,
    call_timeout: Option<Duration>,
    max_queued_bytes: usize,
    transport: TransportConfig,
}

impl ResolvedPoolConfig {
    /// See [`PoolConfig::idle_timeout`]; `None` when reaping is off.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// How often the reaper looks: `max(idle_timeout / 10, 50 ms)`, so an idle connection is
    /// closed within `idle_timeout` plus this.
    pub fn reap_interval(&self) -> Option<Duration> {
        self.idle_timeout.map(|idle| (idle / 10).max(Duration::from_millis(50)))
    }

    /// See [`PoolConfig::heartbeat_interval`].
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    /// See [`PoolConfig::heartbeat_timeout`].
    pub fn heartbeat_timeout(&self) -> Duration {
        self.heartbeat_timeout
    }

    /// See [`PoolConfig::call_timeout`].
    pub fn call_timeout(&self) -> Option<Duration> {
        self.call_timeout
    }

    /// See [`PoolConfig::max_queued_bytes`].
    pub fn max_queued_bytes(&self) -> usize {
        self.max_queued_bytes
    }

    /// The transport settings, with the resolved connect timeout.
    pub fn transport(&self) -> &TransportConfig {
        &self.transport
    }
}

/// Settings of the serving side ([`crate::serve`]). Build one with [`ServerConfig::default`]
/// and the builder methods; each states its default.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    idle_timeout: Option<Duration>,
    drain_timeout: Option<Duration>,
    close_linger: Option<Duration>,
    max_in_flight: Option<usize>,
    max_buffered_bytes: Option<usize>,
    keepalive_interval: Option<Duration>,
    max_connections: Option<usize>,
}

impl ServerConfig {
    /// Go away from a connection that has had no request in flight and received nothing for
    /// this long; `Duration::ZERO` turns it off. Default: 120 s, or
    /// `XOSCAR_SERVER_IDLE_TIMEOUT`.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// After a go-away the server serves whatever still arrives until the caller closes its
    /// sending side (an xoscar-rs caller does so once it has written what it had queued). If
    /// the caller sends nothing at all for this long while the server is reading, the server
    /// stops waiting: it sends a final go-away naming the last request it accepted, answers
    /// what it accepted, and closes. Must be above zero. Default: 5 s.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = Some(timeout);
        self
    }

    /// After a final go-away (the caller never closed), how long to keep reading, and
    /// discarding, while the caller closes its end, so the close is a clean FIN rather than a
    /// reset that could destroy answers still in flight. Default: 1 s.
    pub fn close_linger(mut self, linger: Duration) -> Self {
        self.close_linger = Some(linger);
        self
    }

    /// Per connection, the most requests whose handler is still running plus one-way messages
    /// not yet handled. At the bound the server stops reading that connection (the caller
    /// feels it as TCP backpressure) until one finishes. Must be above zero. Default: 1,024.
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = Some(requests);
        self
    }

    /// Per connection, the most bytes (headers and payloads) held for requests whose handler
    /// is still running, one-way messages not yet handled, and answers not yet written. At
    /// the bound the server stops reading that connection until some are done; one message
    /// may take it past the bound. Must be above zero. Default: 64 MiB.
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = Some(bytes);
        self
    }

    /// The most connections the server holds at once, counting those still in their
    /// handshake: a dial past it is closed at once (the dialler sees the connection end before
    /// the handshake), so a flood of idle dials cannot take tasks and memory without bound
    /// before anyone authenticated. Must be above zero. Default:
    /// [`DEFAULT_MAX_CONNECTIONS`] (10,000).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = Some(connections);
        self
    }

    /// While the server has stopped reading a connection at its limits, it cannot read the
    /// caller's pings, so it sends a keep-alive (a pong with nonce 0) this often instead; keep
    /// it below the callers' heartbeat timeout. Must be above zero. Default: 1 s.
    pub fn keepalive_interval(mut self, interval: Duration) -> Self {
        self.keepalive_interval = Some(interval);
        self
    }

    /// Applies the environment and the defaults, and checks the result.
    pub fn resolve(&self) -> Result<ResolvedServerConfig, ConfigError> {
        let idle = match self.idle_timeout {
            Some(value) => at_most_max("idle_timeout", value)?,
            None => env_seconds(ENV_SERVER_IDLE_TIMEOUT)?.unwrap_or(Duration::from_secs(120)),
        };
        let above_zero = |setting, zero: bool| {
            if zero {
                Err(ConfigError::Invalid { setting, reason: "must be above zero" })
            } else {
                Ok(())
            }
        };
        let config = ResolvedServerConfig {
            idle_timeout: (!idle.is_zero()).then_some(idle),
            drain_timeout: at_most_max(
                "drain_timeout",
                self.drain_timeout.unwrap_or(Duration::from_secs(5)),
            )?,
            close_linger: at_most_max(
                "close_linger",
                self.close_linger.unwrap_or(Duration::from_secs(1)),
            )?,
            max_in_flight: self.max_in_flight.unwrap_or(1024),
            max_buffered_bytes: self.max_buffered_bytes.unwrap_or(64 << 20),
            keepalive_interval: at_most_max(
                "keepalive_interval",
                self.keepalive_interval.unwrap_or(Duration::from_secs(1)),
            )?,
            max_connections: self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
        };
        above_zero("max_connections", config.max_connections == 0)?;
        above_zero("drain_timeout", config.drain_timeout.is_zero())?;
        above_zero("max_in_flight", config.max_in_flight == 0)?;
        above_zero("max_buffered_bytes", config.max_buffered_bytes == 0)?;
        above_zero("keepalive_interval", config.keepalive_interval.is_zero())?;
        Ok(config)
    }
}

/// A [`ServerConfig`] with the environment and defaults applied.
#[derive(Debug, Clone)]
pub struct ResolvedServerConfig {
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) drain_timeout: Duration,
    pub(crate) close_linger: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) max_buffered_bytes: usize,
    pub(crate) keepalive_interval: Duration,
    pub(crate) max_connections: usize,
}

/// Default of [`ServerConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

impl ResolvedServerConfig {
    /// See [`ServerConfig::idle_timeout`]; `None` when off.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// See [`ServerConfig::drain_timeout`].
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout
    }

    /// See [`ServerConfig::max_in_flight`].
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// See [`ServerConfig::max_buffered_bytes`].
    pub fn max_buffered_bytes(&self) -> usize {
        self.max_buffered_bytes
    }

    /// See [`ServerConfig::keepalive_interval`].
    pub fn keepalive_interval(&self) -> Duration {
        self.keepalive_interval
    }

    /// See [`ServerConfig::max_connections`].
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }
}
