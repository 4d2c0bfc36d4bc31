//! A server holds at most `max_connections` connections, those still in their handshake
//! included: a flood of idle dials is closed at once past the limit, counted, and the server
//! takes dials again as soon as one ends.

mod common;

use std::time::Duration;

use common::{message, run, start};
use tokio::io::AsyncReadExt;
use xoscar_pool::testing::Echo;
use xoscar_pool::{DEFAULT_MAX_CONNECTIONS, Pool, PoolConfig, ServerConfig};
use xoscar_transport::Address;

/// A raw dial that never says a word (no handshake), like a flood's.
enum Silent {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn dial(address: &Address) -> Silent {
    match address {
        Address::Tcp { .. } => {
            let at = address.to_string();
            Silent::Tcp(tokio::net::TcpStream::connect(at.as_str()).await.unwrap())
        }
        Address::Unix(path) => Silent::Unix(tokio::net::UnixStream::connect(path).await.unwrap()),
        Address::Inproc(_) => unreachable!("raw dials are sockets"),
    }
}

/// Whether the server closes this dial within `within` (reads to the end, ignoring whatever
/// handshake bytes the server sent first).
async fn closed_within(dial: &mut Silent, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let read = async {
        loop {
            let n = match dial {
                Silent::Tcp(stream) => stream.read(&mut buf).await,
                Silent::Unix(stream) => stream.read(&mut buf).await,
            };
            if !matches!(n, Ok(n) if n > 0) {
                return;
            }
        }
    };
    tokio::time::timeout(within, read).await.is_ok()
}

#[test]
fn dials_past_the_connection_limit_are_closed_at_once() {
    run(async {
        let unix = std::env::temp_dir().join(format!("xoscar-cap-{}.sock", std::process::id()));
        for address in ["127.0.0.1:0".parse().unwrap(), Address::unix(unix)] {
            let config = ServerConfig::default().max_connections(2);
            let server = start(&address, Echo, config).await;
            let at = server.local_addr().clone();
            let (mut first, mut second) = (dial(&at).await, dial(&at).await);
            let mut third = dial(&at).await;
            assert!(
                closed_within(&mut third, Duration::from_secs(5)).await,
                "{at}: past the limit"
            );
            assert_eq!(server.turned_away(), 1, "{at}");
            assert!(!closed_within(&mut first, Duration::from_millis(300)).await, "{at}: held");
            assert!(!closed_within(&mut second, Duration::from_millis(10)).await, "{at}: held");

            drop(first);
            // The server notices the dial went and takes the next one.
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            loop {
                match pool.call(&at, message("after")).await {
                    Ok(echo) => break assert_eq!(&echo.header[..], b"after"),
                    Err(error) => {
                        assert!(tokio::time::Instant::now() < deadline, "{at}: {error}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            drop(second);
        }
    });
}

#[test]
fn the_default_limit_is_ten_thousand_connections() {
    let resolved = ServerConfig::default().resolve().unwrap();
    assert_eq!((resolved.max_connections(), DEFAULT_MAX_CONNECTIONS), (10_000, 10_000));
    assert!(ServerConfig::default().max_connections(0).resolve().is_err(), "zero is refused");
}
