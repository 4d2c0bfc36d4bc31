//! Dials against a listener whose accept backlog is full: TCP honours the connect timeout
//! (Linux drops the SYN), Unix sockets and in-process listeners say `ListenerBusy` at once.
//! Everything stays on this machine.

mod common;

use std::time::{Duration, Instant};

use common::bounded;
#[allow(unused_imports)] // Address is used by the socket transports only
use xoscar_transport::{Address, TransportConfig, TransportError, connect, listen};

#[cfg(feature = "tcp")]
#[tokio::test]
async fn tcp_dial_to_a_full_backlog_times_out_at_the_connect_timeout() {
    bounded(async {
        let timeout = Duration::from_millis(300);
        let config = TransportConfig::default().backlog(1).connect_timeout(timeout);
        let listener = listen(&"127.0.0.1:0".parse().unwrap(), &config).await.unwrap();
        let Address::Tcp { port, .. } = listener.local_addr() else { unreachable!() };
        let target = format!("127.0.0.1:{port}");

        // Fill the accept queue with raw dials nobody accepts, until the kernel drops SYNs.
        let mut queued = Vec::new();
        let mut full = false;
        for _ in 0..64 {
            let attempt = tokio::net::TcpStream::connect(&target);
            match tokio::time::timeout(Duration::from_millis(200), attempt).await {
                Ok(stream) => queued.push(stream.unwrap()),
                Err(_) => {
                    full = true;
                    break;
                }
            }
        }
        assert!(full, "the backlog never filled after {} dials", queued.len());

        let started = Instant::now();
        let error = connect(listener.local_addr(), &config).await.unwrap_err();
        let took = started.elapsed();
        assert!(
            matches!(error, TransportError::ConnectTimedOut { timeout: t, .. } if t == timeout),
            "{error}"
        );
        assert!(took >= timeout, "gave up early, after {took:?}");
        assert!(took < timeout + Duration::from_secs(5), "took {took:?}");
    })
    .await;
}

#[cfg(feature = "uds")]
#[tokio::test]
async fn unix_dial_to_a_full_backlog_is_listener_busy_at_once() {
    bounded(async {
        let path = std::env::temp_dir().join(format!("xoscar-backlog-{}.sock", std::process::id()));
        let config = TransportConfig::default().backlog(1).connect_timeout(Duration::from_secs(30));
        let listener = listen(&Address::unix(&path), &config).await.unwrap();

        let mut queued = Vec::new();
        let mut busy = false;
        for _ in 0..64 {
            match tokio::net::UnixStream::connect(&path).await {
                Ok(stream) => queued.push(stream),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    busy = true;
                    break;
                }
                Err(error) => panic!("unexpected dial error {error}"),
            }
        }
        assert!(busy, "the backlog never filled after {} dials", queued.len());

        let started = Instant::now();
        let error = connect(listener.local_addr(), &config).await.unwrap_err();
        assert!(matches!(error, TransportError::ListenerBusy { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5), "busy must be reported at once");
    })
    .await;
}

#[cfg(feature = "inproc")]
#[tokio::test]
async fn inproc_dial_to_a_full_backlog_is_listener_busy_at_once() {
    bounded(async {
        let started = Instant::now();
        let config = TransportConfig::default().backlog(2);
        let mut listener = listen(&"inproc://backlog".parse().unwrap(), &config).await.unwrap();
        let address = listener.local_addr().clone();
        // An in-process dial completes once accepted, like a socket dial with its handshake.
        let dial = |address: xoscar_transport::Address, config: TransportConfig| {
            tokio::spawn(async move { connect(&address, &config).await })
        };
        let first = dial(address.clone(), config.clone());
        let second = dial(address.clone(), config.clone());
        tokio::task::yield_now().await;
        let error = connect(&address, &config).await.unwrap_err();
        assert!(matches!(error, TransportError::ListenerBusy { .. }), "{error}");
        // Accepting one frees a place and completes its dial.
        let _accepted = listener.accept().await.unwrap().handshake().await.unwrap();
        let first = first.await.unwrap().unwrap();
        let third = dial(address.clone(), config.clone());
        let _second_accepted = listener.accept().await.unwrap().handshake().await.unwrap();
        let _third_accepted = listener.accept().await.unwrap().handshake().await.unwrap();
        let (second, third) = (second.await.unwrap().unwrap(), third.await.unwrap().unwrap());
        drop((first, second, third));
        assert!(started.elapsed() < Duration::from_secs(5), "busy must be reported at once");
    })
    .await;
}

#[cfg(feature = "inproc")]
#[tokio::test]
async fn inproc_dials_still_queued_when_the_listener_closes_are_refused() {
    bounded(async {
        let config = TransportConfig::default();
        let listener = listen(&"inproc://closing-backlog".parse().unwrap(), &config).await.unwrap();
        let address = listener.local_addr().clone();
        let queued = tokio::spawn({
            let (address, config) = (address.clone(), config.clone());
            async move { connect(&address, &config).await }
        });
        tokio::task::yield_now().await;
        drop(listener);
        let error = queued.await.unwrap().unwrap_err();
        assert!(matches!(error, TransportError::ConnectionRefused { .. }), "{error}");
    })
    .await;
}
