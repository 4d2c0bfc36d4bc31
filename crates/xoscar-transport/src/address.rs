//! Endpoint addresses: `host:port`, `tcp://host:port`, `unix:///path`, `inproc://name`.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where a listener listens or a dialler connects.
///
/// Parsed from text (see [`Address::from_str`]); [`fmt::Display`] gives back text that parses
/// to the same address. TCP addresses display without a scheme (`127.0.0.1:80`, `[::1]:80`,
/// `example.com:80`), the form xoscar users pass around.
///
/// ```
/// use xoscar_transport::Address;
/// let a: Address = "tcp://[::1]:9000".parse().unwrap();
/// assert_eq!(a.to_string(), "[::1]:9000");
/// assert_eq!(a, a.to_string().parse().unwrap());
/// let u: Address = "unix:///tmp/pool.sock".parse().unwrap();
/// assert_eq!(u.to_string(), "unix:///tmp/pool.sock");
/// assert!("unix://relative.sock".parse::<Address>().is_err());
/// // Unix paths compare as written, byte for byte.
/// assert_ne!(Address::unix("/tmp/a.sock"), Address::unix("/tmp//a.sock"));
/// ```
///
/// Addresses are map keys on every call (a pool finds its connection by them), so equality and
/// hashing of Unix paths work on the path's bytes as written, not on its components as
/// [`Path`]'s do (which hashes a byte at a time and was a tenth of a call's cost on the caller).
#[derive(Debug, Clone)]
pub enum Address {
    /// A TCP endpoint.
    Tcp {
        /// An IP address or a DNS name resolved at connect/listen time.
        host: Host,
        /// The port; 0 asks a listener for any free port.
        port: u16,
    },
    /// A Unix domain stream socket at an absolute path.
    Unix(PathBuf),
    /// A named in-process endpoint (no socket, frames move as values).
    Inproc(String),
}

impl PartialEq for Address {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Address::Tcp { host, port }, Address::Tcp { host: h, port: p }) => {
                port == p && host == h
            }
            (Address::Unix(path), Address::Unix(other)) => {
                path.as_os_str().as_encoded_bytes() == other.as_os_str().as_encoded_bytes()
            }
            (Address::Inproc(name), Address::Inproc(other)) => name == other,
            _ => false,
        }
    }
}

impl Eq for Address {}

impl std::hash::Hash for Address {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Address::Tcp { host, port } => {
                host.hash(state);
                port.hash(state);
            }
            Address::Unix(path) => path.as_os_str().as_encoded_bytes().hash(state),
            Address::Inproc(name) => name.hash(state),
        }
    }
}

/// The host part of a TCP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A literal IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A DNS name, checked to be made of letters, digits, `-` and `.`.
    Name(String),
}

/// Why a text is not an [`Address`]. The message quotes the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address {text:?}: {reason}")]
pub struct AddressError {
    /// The text that failed to parse.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Address {
    /// A TCP address from a socket address.
    pub fn tcp(addr: SocketAddr) -> Self {
        Address::Tcp { host: Host::Ip(addr.ip()), port: addr.port() }
    }

    /// A Unix socket address (the path must be absolute to round-trip through text).
    pub fn unix(path: impl AsRef<Path>) -> Self {
        Address::Unix(path.as_ref().to_path_buf())
    }

    /// An in-process address.
    pub fn inproc(name: impl Into<String>) -> Self {
        Address::Inproc(name.into())
    }

    /// The scheme this address uses: `tcp`, `unix` or `inproc`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Address::Tcp { .. } => "tcp",
            Address::Unix(_) => "unix",
            Address::Inproc(_) => "inproc",
        }
    }
}

impl FromStr for Address {
    type Err = AddressError;

    /// Accepts `host:port`, `tcp://host:port` (host: IPv4, `[IPv6]` or a DNS name),
    /// `unix:///absolute/path` and `inproc://name`.
    fn from_str(text: &str) -> Result<Self, AddressError> {
        let fail = |reason| AddressError { text: text.to_string(), reason };
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(fail("a unix address needs an absolute path: unix:///path"));
            }
            if path.len() == 1 || path.ends_with('/') {
                return Err(fail("a unix address must name a file"));
            }
            if path.contains('\0') {
                return Err(fail("a unix path cannot contain NUL"));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if let Some(name) = text.strip_prefix("inproc://") {
            if name.is_empty() {
                return Err(fail("an inproc address needs a name: inproc://name"));
            }
            if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(fail("an inproc name cannot contain spaces or control characters"));
            }
            return Ok(Address::Inproc(name.to_string()));
        }
        let rest = match text.strip_prefix("tcp://") {
            Some(rest) => rest,
            None if text.contains("://") => return Err(fail("unknown scheme")),
            None => text,
        };
        parse_host_port(rest).map_err(fail)
    }
}

fn parse_host_port(text: &str) -> Result<Address, &'static str> {
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let (v6, after) = bracketed.split_once(']').ok_or("missing ']' after an IPv6 host")?;
        let port = after.strip_prefix(':').ok_or("missing ':port' after the IPv6 host")?;
        let ip: Ipv6Addr = v6.parse().map_err(|_| "not a valid IPv6 address between [ ]")?;
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = text.rsplit_once(':').ok_or("missing ':port'")?;
        if host.contains(':') {
            return Err("an IPv6 host must be written in brackets: [::1]:port");
        }
        (parse_host(host)?, port)
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port must be a number");
    }
    let port = port.parse().map_err(|_| "the port must be at most 65535")?;
    Ok(Address::Tcp { host, port })
}

fn parse_host(host: &str) -> Result<Host, &'static str> {
    if host.is_empty() {
        return Err("missing host");
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.len() > 253 || !host.split('.').all(valid_label) {
        return Err("the host is neither an IP address nor a valid DNS name");
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err("the host looks like an IPv4 address but is not a valid one");
    }
    Ok(Host::Name(host.to_string()))
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Unix(path) => write!(f, "unix://{}", path.display()),
            Address::Inproc(name) => write!(f, "inproc://{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_parse_and_round_trip() {
        for (text, canonical) in [
            ("127.0.0.1:80", "127.0.0.1:80"),
            ("tcp://127.0.0.1:0", "127.0.0.1:0"),
            ("[::1]:65535", "[::1]:65535"),
            ("tcp://[fe80::1]:9", "[fe80::1]:9"),
            ("localhost:1234", "localhost:1234"),
            ("tcp://pool-1.example.com:80", "pool-1.example.com:80"),
            ("unix:///tmp/a.sock", "unix:///tmp/a.sock"),
            ("inproc://main-pool", "inproc://main-pool"),
        ] {
            let address: Address = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(address.to_string(), canonical);
            assert_eq!(canonical.parse::<Address>().unwrap(), address);
        }
    }

    #[test]
    fn bad_addresses_are_typed_errors_quoting_the_text() {
        for text in [
            "",
            "127.0.0.1",
            "127.0.0.1:",
            "127.0.0.1:65536",
            "127.0.0.1:-1",
            "127.0.0.1:+80",
            "::1:80",
            "[::1]80",
            "[::1:80",
            "[nope]:80",
            "999.1.1.1:80",
            "bad_host:80",
            ":80",
            "-a.com:80",
            "http://x:80",
            "unix://rel.sock",
            "unix:///",
            "unix:///tmp/dir/",
            "inproc://",
            "inproc://a b",
            "tcp://",
        ] {
            let error = text.parse::<Address>().expect_err(text);
            assert_eq!(error.text, text);
            assert!(error.to_string().contains(&format!("{text:?}")), "{error}");
        }
    }
}
