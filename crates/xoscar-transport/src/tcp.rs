//! TCP: listeners with a chosen backlog, dials, and the socket options every connection gets.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use tokio::net::{TcpListener, TcpStream};

use crate::stream::{BoxRead, BoxWrite};
use crate::{Host, TransportConfig, TransportError};

/// The socket addresses a host and port stand for.
async fn resolve(host: &Host, port: u16, label: &str) -> Result<Vec<SocketAddr>, TransportError> {
    match host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, port)]),
        Host::Name(name) => {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|source| TransportError::Io {
                    operation: "resolve",
                    address: label.to_string(),
                    source,
                })?
                .collect();
            if found.is_empty() {
                return Err(TransportError::Io {
                    operation: "resolve",
                    address: label.to_string(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no addresses for this name"),
                });
            }
            Ok(found)
        }
    }
}

/// Binds a listener with the configured backlog (tokio's own `bind` fixes it at 1024).
pub(crate) async fn bind(
    host: &Host,
    port: u16,
    label: &str,
    config: &TransportConfig,
) -> Result<(TcpListener, SocketAddr), TransportError> {
    let addr = resolve(host, port, label).await?[0];
    let listen_err = |source: io::Error| match source.kind() {
        io::ErrorKind::AddrInUse => TransportError::AddressInUse {
            address: label.to_string(),
            reason: "another socket is bound to it",
        },
        _ => TransportError::Io { operation: "listen on", address: label.to_string(), source },
    };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(listen_err)?;
    socket.set_reuse_address(true).map_err(listen_err)?;
    if addr.is_ipv6() {
        // Exactly the address given: `[::]` must not also take every IPv4 address.
        socket.set_only_v6(true).map_err(listen_err)?;
    }
    socket.set_nonblocking(true).map_err(listen_err)?;
    socket.bind(&addr.into()).map_err(listen_err)?;
    socket.listen(config.backlog.min(i32::MAX as u32) as i32).map_err(listen_err)?;
    let listener = TcpListener::from_std(socket.into()).map_err(listen_err)?;
    let local = listener.local_addr().map_err(listen_err)?;
    Ok((listener, local))
}

/// Dials each resolved address in turn; the first that answers wins.
pub(crate) async fn dial(
    host: &Host,
    port: u16,
    label: &str,
    config: &TransportConfig,
) -> Result<TcpStream, TransportError> {
    let mut last_error = None;
    for addr in resolve(host, port, label).await? {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                tune(&stream, config).map_err(|source| TransportError::Io {
                    operation: "configure",
                    address: label.to_string(),
                    source,
                })?;
                return Ok(stream);
            }
            Err(error) => last_error = Some(TransportError::from_connect_io(label, error)),
        }
    }
    Err(last_error.expect("resolve returns at least one address"))
}

/// `TCP_NODELAY` and keepalive, as configured.
pub(crate) fn tune(stream: &TcpStream, config: &TransportConfig) -> io::Result<()> {
    stream.set_nodelay(config.nodelay)?;
    if let Some(keepalive) = config.keepalive {
        let params = TcpKeepalive::new()
            .with_time(keepalive.get_idle())
            .with_interval(keepalive.get_interval())
            .with_retries(keepalive.get_retries());
        SockRef::from(stream).set_tcp_keepalive(&params)?;
    }
    Ok(())
}

/// Owned halves, type-erased for the shared stream code.
pub(crate) fn split(stream: TcpStream) -> (BoxRead, BoxWrite) {
    let (read, write) = stream.into_split();
    (Box::new(read), Box::new(write))
}
