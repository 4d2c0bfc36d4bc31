//! The activity clocks of channel halves: a reader's moves on every read, also inside a frame;
//! a writer's moves while the peer takes bytes and stands still while it does not.
#![cfg(any(feature = "tcp", feature = "uds"))]

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{Raw, bounded, raw_dial, socket_addresses};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xoscar_transport::{Address, Channel, TransportConfig, listen};
use xoscar_wire::{Frame, FrameEncoder, Handshake, WriteBuf, pb};

/// The bytes of `frame` as they go on the wire.
fn encoded(frame: Frame) -> Vec<u8> {
    use bytes::Buf;
    let mut out = WriteBuf::new();
    FrameEncoder::default().encode(frame, &mut out).unwrap();
    out.copy_to_bytes(out.remaining()).to_vec()
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

/// A channel accepted on `address` whose peer is a raw socket that sent a valid handshake.
async fn with_raw_peer(address: &Address) -> (Channel, Box<dyn Raw>) {
    let mut listener = listen(address, &TransportConfig::default()).await.unwrap();
    let local = listener.local_addr().clone();
    let accepted =
        tokio::spawn(async move { listener.accept().await.unwrap().handshake().await.unwrap() });
    let mut raw = raw_dial(&local).await;
    let mut hello = BytesMut::new();
    Handshake::new(pb::Hello::default()).encode(&mut hello);
    raw.write_all(&hello).await.unwrap();
    (accepted.await.unwrap(), raw)
}

#[tokio::test]
async fn part_of_a_frame_moves_the_readers_clock_before_the_frame_is_whole() {
    bounded(async {
        for address in socket_addresses() {
            let (channel, mut raw) = with_raw_peer(&address).await;
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
async fn a_writers_clock_moves_while_a_slow_peer_reads_and_stands_still_when_it_stops() {
    bounded(async {
        for address in socket_addresses() {
            // The peer is a raw socket, so it can read as slowly as it likes.
            let (channel, mut raw) = with_raw_peer(&address).await;
            let (_reader, mut writer) = channel.split();
            let activity = writer.activity();
            let started = activity.last();
            let big = Bytes::from(vec![1u8; 64 << 20]);
            let writing = tokio::spawn(async move {
                writer.send(Frame::request(1, Bytes::new(), vec![big])).await
            });
            // 1 MiB every 20 ms (the kernel wakes a waiting writer only once a good part of
            // its buffer is free): the writer waits, then makes progress, again and again.
            let mut chunk = vec![0u8; 1 << 20];
            for _ in 0..15 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                raw.read_exact(&mut chunk).await.unwrap();
            }
            assert!(
                activity.last() > started,
                "{address}: progress after waits did not move the clock"
            );
            // The reader stopped: once the buffers are full again, the clock stands still.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let stalled_at = activity.last();
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(activity.last(), stalled_at, "{address}: a stuck writer's clock moved");
            assert!(!writing.is_finished(), "{address}: 64 MiB cannot fit in socket buffers");
            writing.abort();
        }
    })
    .await;
}
