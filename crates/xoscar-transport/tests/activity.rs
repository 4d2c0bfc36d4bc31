//! The activity clocks of channel halves: a reader's moves on every read, also inside a frame;
//! a writer's moves while the peer takes bytes and stands still while it does not.
#![cfg(any(feature = "tcp", feature = "uds"))]

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{addresses, bounded};
use tokio::io::AsyncWriteExt;
use xoscar_transport::{Address, TransportConfig, connect, listen};
use xoscar_wire::{Frame, FrameEncoder, Handshake, WriteBuf, pb};

fn socket_addresses() -> Vec<Address> {
    addresses().into_iter().filter(|a| !matches!(a, Address::Inproc(_))).collect()
}

/// The bytes of `frame` as they go on the wire.
fn encoded(frame: Frame) -> Vec<u8> {
    use bytes::Buf;
    let mut out = WriteBuf::new();
    FrameEncoder::default().encode(frame, &mut out).unwrap();
    let mut bytes = Vec::new();
    while out.has_remaining() {
        let chunk = out.chunk().to_vec();
        out.advance(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

async fn poll_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}

#[tokio::test]
async fn part_of_a_frame_moves_the_readers_clock_before_the_frame_is_whole() {
    bounded(async {
        for address in socket_addresses() {
            let mut listener = listen(&address, &TransportConfig::default()).await.unwrap();
            let local = listener.local_addr().clone();
            let accepted =
                tokio::spawn(
                    async move { listener.accept().await.unwrap().handshake().await.unwrap() },
                );
            let mut raw: Box<dyn common_raw::Raw> = common_raw::dial(&local).await;
            let mut hello = BytesMut::new();
            Handshake::new(pb::Hello::default()).encode(&mut hello);
            raw.write_all(&hello).await.unwrap();
            let channel = accepted.await.unwrap();
            let (mut reader, _writer) = channel.split();
            let activity = reader.activity();
            let started = activity.last();
            let receiving = tokio::spawn(async move { reader.recv().await.map(|f| f.is_some()) });

            let frame = Frame::request(1, Bytes::new(), vec![Bytes::from(vec![7u8; 100_000])]);
            let bytes = encoded(frame);
            let (head, tail) = bytes.split_at(bytes.len() / 2);
            tokio::time::sleep(Duration::from_millis(20)).await;
            raw.write_all(head).await.unwrap();
            assert!(
                poll_until(Duration::from_secs(5), || activity.last() > started).await,
                "{address}: half a frame did not move the reader's clock"
            );
            assert!(!receiving.is_finished(), "{address}: the frame is not whole yet");
            raw.write_all(tail).await.unwrap();
            assert!(receiving.await.unwrap().unwrap(), "{address}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_writer_whose_peer_does_not_read_stops_moving_its_clock() {
    bounded(async {
        for address in socket_addresses() {
            let mut listener = listen(&address, &TransportConfig::default()).await.unwrap();
            let local = listener.local_addr().clone();
            // The peer handshakes, then never reads.
            let peer =
                tokio::spawn(
                    async move { listener.accept().await.unwrap().handshake().await.unwrap() },
                );
            let channel = connect(&local, &TransportConfig::default()).await.unwrap();
            let _peer = peer.await.unwrap();
            let (_reader, mut writer) = channel.split();
            let activity = writer.activity();
            let big = Bytes::from(vec![1u8; 64 << 20]);
            let writing = tokio::spawn(async move {
                writer.send(Frame::request(1, Bytes::new(), vec![big])).await
            });
            // Bytes flow until the socket buffers are full, then the clock stands still.
            let mut last = activity.last();
            let mut still_since = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let now = activity.last();
                if now != last {
                    (last, still_since) = (now, tokio::time::Instant::now());
                } else if still_since.elapsed() >= Duration::from_millis(500) {
                    break;
                }
            }
            assert!(!writing.is_finished(), "{address}: 64 MiB cannot fit in socket buffers");
            writing.abort();
        }
    })
    .await;
}

mod common_raw {
    use tokio::io::{AsyncRead, AsyncWrite};
    use xoscar_transport::Address;

    pub trait Raw: AsyncRead + AsyncWrite + Unpin + Send {}
    impl<T: AsyncRead + AsyncWrite + Unpin + Send> Raw for T {}

    pub async fn dial(address: &Address) -> Box<dyn Raw> {
        match address {
            #[cfg(feature = "tcp")]
            Address::Tcp { .. } => {
                Box::new(tokio::net::TcpStream::connect(address.to_string()).await.unwrap())
            }
            #[cfg(feature = "uds")]
            Address::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await.unwrap()),
            other => panic!("no raw dial for {other}"),
        }
    }
}
