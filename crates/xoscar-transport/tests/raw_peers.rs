//! Socket transports against raw peers that do not follow the protocol: wrong magic or version,
//! silence, malformed and truncated frames. Also Unix socket file handling.
#![cfg(any(feature = "tcp", feature = "uds"))]

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::{Raw, bounded, raw_dial, socket_addresses};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xoscar_transport::{Address, TransportConfig, TransportError, connect, listen};
use xoscar_wire::{Frame, Handshake, MAGIC, PROTOCOL_VERSION, ReceivedFrame, WireError, pb};

fn valid_handshake() -> BytesMut {
    let mut bytes = BytesMut::new();
    Handshake::new(pb::Hello::default()).encode(&mut bytes);
    bytes
}

#[tokio::test]
async fn a_peer_with_the_wrong_magic_is_refused_and_still_sees_our_handshake() {
    bounded(async {
        let config = TransportConfig::default();
        for address in socket_addresses() {
            let mut listener = listen(&address, &config).await.unwrap();
            let mut raw = raw_dial(listener.local_addr()).await;
            raw.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            let error = listener.accept().await.unwrap().handshake().await.unwrap_err();
            assert!(
                matches!(
                    &error,
                    TransportError::Handshake { source: WireError::BadMagic { .. }, .. }
                ),
                "{address}: {error}"
            );
            let mut magic = [0; 4];
            raw.read_exact(&mut magic).await.unwrap();
            assert_eq!(magic, MAGIC, "the server answers with its own handshake before closing");
        }
    })
    .await;
}

#[tokio::test]
async fn a_server_of_another_version_is_a_version_mismatch_for_the_dialler() {
    bounded(async {
        let config = TransportConfig::default();
        for address in socket_addresses() {
            // A peer from the future: a raw listener answering with version + 1.
            let raw_listener = RawListener::bind(&address).await;
            let dial = tokio::spawn({
                let (config, target) = (config.clone(), raw_listener.address.clone());
                async move { connect(&target, &config).await }
            });
            let mut raw = raw_listener.accept().await;
            let mut future = BytesMut::new();
            future.put_slice(&MAGIC);
            future.put_u16_le(PROTOCOL_VERSION + 1);
            future.put_u16_le(0);
            future.put_u32_le(0);
            raw.write_all(&future).await.unwrap();
            let error = dial.await.unwrap().unwrap_err();
            assert!(
                matches!(
                    &error,
                    TransportError::Handshake { source: WireError::VersionMismatch { theirs, .. }, .. }
                        if *theirs == PROTOCOL_VERSION + 1
                ),
                "{address}: {error}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_silent_peer_times_out_its_handshake_without_blocking_accept() {
    bounded(async {
        let config = TransportConfig::default().handshake_timeout(Duration::from_millis(200));
        for address in socket_addresses() {
            let mut listener = listen(&address, &config).await.unwrap();
            let local = listener.local_addr().clone();
            let _silent = raw_dial(&local).await;
            let silent = listener.accept().await.unwrap();
            let pending = tokio::spawn(silent.handshake());
            // A well-behaved dialler is accepted meanwhile.
            let dial = tokio::spawn({
                let config = config.clone();
                async move { connect(&local, &config).await }
            });
            listener.accept().await.unwrap().handshake().await.unwrap();
            dial.await.unwrap().unwrap();
            let error = pending.await.unwrap().unwrap_err();
            assert!(
                matches!(error, TransportError::HandshakeTimedOut { .. }),
                "{address}: {error}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn malformed_and_truncated_frames_are_typed_errors_for_that_channel_only() {
    bounded(async {
        let config = TransportConfig::default();
        for address in socket_addresses() {
            let mut listener = listen(&address, &config).await.unwrap();
            let local = listener.local_addr().clone();

            // Unknown kind 99 right after a valid handshake.
            let mut raw = raw_dial(&local).await;
            let mut bytes = valid_handshake();
            bytes.put_slice(&[99, 0, 0, 0, 0, 0, 0, 0]);
            raw.write_all(&bytes).await.unwrap();
            let mut bad = listener.accept().await.unwrap().handshake().await.unwrap();
            let error = bad.recv().await.unwrap_err();
            assert!(
                matches!(
                    &error,
                    TransportError::Protocol { source: WireError::UnknownKind(99), .. }
                ),
                "{address}: {error}"
            );

            // Half a frame, then the peer closes.
            let mut raw = raw_dial(&local).await;
            let mut bytes = valid_handshake();
            bytes.put_slice(&[1, 0, 0, 0, 10, 0, 0, 0, 0x08]);
            raw.write_all(&bytes).await.unwrap();
            let mut cut = listener.accept().await.unwrap().handshake().await.unwrap();
            drop(raw);
            let error = cut.recv().await.unwrap_err();
            assert!(matches!(error, TransportError::ConnectionLost { .. }), "{address}: {error}");

            // A good peer on the same listener is unaffected.
            let dial = tokio::spawn({
                let config = config.clone();
                async move { connect(&local, &config).await }
            });
            let mut good = listener.accept().await.unwrap().handshake().await.unwrap();
            let mut client = dial.await.unwrap().unwrap();
            let sent = Frame::request(1, Bytes::from_static(b"fine"), vec![]);
            client.send(sent.clone()).await.unwrap();
            assert_eq!(good.recv().await.unwrap().map(ReceivedFrame::into_frame), Some(sent));
        }
    })
    .await;
}

/// A bare listener of the same transport as `address`, for playing a misbehaving server.
struct RawListener {
    address: Address,
    #[cfg(feature = "tcp")]
    tcp: Option<tokio::net::TcpListener>,
    #[cfg(feature = "uds")]
    unix: Option<tokio::net::UnixListener>,
}

impl RawListener {
    async fn bind(address: &Address) -> Self {
        match address {
            #[cfg(feature = "tcp")]
            Address::Tcp { .. } => {
                let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let address = Address::tcp(tcp.local_addr().unwrap());
                RawListener {
                    address,
                    tcp: Some(tcp),
                    #[cfg(feature = "uds")]
                    unix: None,
                }
            }
            #[cfg(feature = "uds")]
            Address::Unix(path) => {
                let _ = std::fs::remove_file(path);
                let unix = tokio::net::UnixListener::bind(path).unwrap();
                RawListener {
                    address: address.clone(),
                    #[cfg(feature = "tcp")]
                    tcp: None,
                    unix: Some(unix),
                }
            }
            other => panic!("no raw listener for {other}"),
        }
    }

    async fn accept(&self) -> Box<dyn Raw> {
        #[cfg(feature = "tcp")]
        if let Some(tcp) = &self.tcp {
            return Box::new(tcp.accept().await.unwrap().0);
        }
        #[cfg(feature = "uds")]
        if let Some(unix) = &self.unix {
            return Box::new(unix.accept().await.unwrap().0);
        }
        unreachable!("a raw listener holds one socket")
    }
}

#[cfg(feature = "uds")]
mod unix_files {
    use super::*;

    fn temp_path(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("xoscar-u-{}-{tag}.sock", std::process::id()))
    }

    #[tokio::test]
    async fn a_stale_socket_file_is_replaced_and_ours_is_removed_on_drop() {
        bounded(async {
            let path = temp_path("stale");
            let _ = std::fs::remove_file(&path);
            // A socket file nobody listens on: std's listener leaves its file behind.
            drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
            assert!(path.exists());
            let config = TransportConfig::default();
            let (local, server) = common::echo_server(&Address::unix(&path), &config).await;
            let mut channel = connect(&local, &config).await.unwrap();
            let sent = Frame::request(1, Bytes::new(), vec![]);
            channel.send(sent.clone()).await.unwrap();
            assert_eq!(channel.recv().await.unwrap().map(ReceivedFrame::into_frame), Some(sent));
            server.abort();
            let _ = server.await;
            assert!(!path.exists(), "the listener removes its socket file when dropped");
        })
        .await;
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_socket_is_left_alone() {
        bounded(async {
            let path = temp_path("regular");
            std::fs::write(&path, b"precious").unwrap();
            let error =
                listen(&Address::unix(&path), &TransportConfig::default()).await.unwrap_err();
            assert!(matches!(error, TransportError::AddressInUse { .. }), "{error}");
            assert_eq!(std::fs::read(&path).unwrap(), b"precious");
            std::fs::remove_file(&path).unwrap();
        })
        .await;
    }

    #[tokio::test]
    async fn a_successor_socket_file_survives_our_drop() {
        bounded(async {
            let path = temp_path("successor");
            let _ = std::fs::remove_file(&path);
            let ours = listen(&Address::unix(&path), &TransportConfig::default()).await.unwrap();
            std::fs::remove_file(&path).unwrap();
            let successor = std::os::unix::net::UnixListener::bind(&path).unwrap();
            drop(ours);
            assert!(path.exists(), "a file we did not create is not ours to remove");
            drop(successor);
            std::fs::remove_file(&path).unwrap();
        })
        .await;
    }
}
