//! `try_recv` and `try_feed`: taking frames that are already here and queueing frames that
//! fit, without an await, on every transport; each gives back what it cannot do at once. And
//! frames encoded ahead of the writer (`try_feed_encoded`), handed over as bytes; and
//! `try_flush`, which writes what the socket takes and leaves the rest queued.

mod common;

use bytes::Buf;
use bytes::Bytes;
use common::{addresses, bounded};
use xoscar_transport::{Address, Channel, TransportConfig, TransportError, connect, listen};
use xoscar_wire::{Frame, FrameEncoder, Limits, ReceivedFrame, WireError, WriteBuf};

fn frame(id: u64, payload: Bytes) -> Frame {
    Frame::request(id, Bytes::from_static(b"hdr"), vec![payload])
}

/// A dialled channel and the listener's end of it.
async fn pair(address: &Address, config: &TransportConfig) -> (Channel, Channel) {
    let mut listener = listen(address, config).await.unwrap();
    let local = listener.local_addr().clone();
    let dial = tokio::spawn({
        let config = config.clone();
        async move { connect(&local, &config).await }
    });
    let accepted = listener.accept().await.unwrap().handshake().await.unwrap();
    (dial.await.unwrap().unwrap(), accepted)
}

#[tokio::test]
async fn try_recv_takes_the_frames_one_read_brought_in_order_and_never_reads() {
    bounded(async {
        let config = TransportConfig::default();
        for address in addresses() {
            let (mut client, mut server) = pair(&address, &config).await;
            assert!(server.try_recv().is_none(), "{address}: nothing was sent");
            // Three frames queued and flushed together: one write of a few hundred bytes,
            // which a loopback or Unix socket delivers whole (in-process: three queued frames).
            let sent: Vec<Frame> =
                (1..=3).map(|id| frame(id, Bytes::from(vec![id as u8; 100]))).collect();
            for frame in &sent {
                client.feed(frame.clone()).await.unwrap();
            }
            client.flush().await.unwrap();
            let first = server.recv().await.unwrap().map(ReceivedFrame::into_frame);
            assert_eq!(first.as_ref(), Some(&sent[0]), "{address}");
            for expected in &sent[1..] {
                let taken = server.try_recv().expect("already read with the first").unwrap();
                assert_eq!(&taken, expected, "{address}");
            }
            assert!(server.try_recv().is_none(), "{address}: nothing more was sent");
            // Nothing is read by `try_recv`: what comes later waits for `recv`.
            let later = frame(4, Bytes::from_static(b"later"));
            client.send(later.clone()).await.unwrap();
            assert_eq!(
                server.recv().await.unwrap().map(ReceivedFrame::into_frame),
                Some(later),
                "{address}"
            );
            drop(client);
            assert_eq!(
                server.recv().await.unwrap().map(ReceivedFrame::into_frame),
                None,
                "{address}: a clean end"
            );
            assert!(server.try_recv().is_none(), "{address}: nothing after the end");
        }
    })
    .await;
}

#[tokio::test]
async fn try_recv_gives_bytes_that_are_not_a_frame_as_the_protocol_error_then_nothing() {
    bounded(async {
        let config = TransportConfig::default();
        for address in common::socket_addresses() {
            let mut listener = listen(&address, &config).await.unwrap();
            let mut raw = common::raw_dial(listener.local_addr()).await;
            let mut bytes = bytes::BytesMut::new();
            xoscar_wire::Handshake::new(xoscar_wire::pb::Hello::default()).encode(&mut bytes);
            // A frame of unknown kind 99.
            bytes.extend_from_slice(&[99, 0, 0, 0, 0, 0, 0, 0]);
            tokio::io::AsyncWriteExt::write_all(&mut raw, &bytes).await.unwrap();
            let mut server = listener.accept().await.unwrap().handshake().await.unwrap();
            // The bad bytes may have come with the handshake or may still be on their way.
            let error = match server.try_recv() {
                Some(received) => received.unwrap_err(),
                None => server.recv().await.unwrap_err(),
            };
            assert!(
                matches!(
                    error,
                    TransportError::Protocol { source: WireError::UnknownKind(99), .. }
                ),
                "{address}: {error}"
            );
            assert!(server.try_recv().is_none(), "{address}: the reader yields nothing more");
            assert_eq!(
                server.recv().await.unwrap().map(ReceivedFrame::into_frame),
                None,
                "{address}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn try_feed_queues_up_to_the_high_water_mark_and_gives_back_the_frame_that_must_wait() {
    bounded(async {
        // Frames of about 420 bytes (payloads are queued by reference, not copied): each is
        // taken while the queue holds less than 1 KiB, so the third takes it past the mark
        // and the fourth is given back.
        let config = TransportConfig::default().write_high_water(1024).inproc_capacity(3);
        for address in addresses() {
            let (mut client, mut server) = pair(&address, &config).await;
            let sent: Vec<Frame> =
                (1..=4).map(|id| frame(id, Bytes::from(vec![id as u8; 400]))).collect();
            for frame in &sent[..3] {
                assert!(client.try_feed(frame.clone()).unwrap().is_none(), "{address}");
            }
            let back = client.try_feed(sent[3].clone()).unwrap();
            assert_eq!(back.as_ref(), Some(&sent[3]), "{address}: given back untouched");
            // Socket writes wait for a flush; in-process, the peer has to take a frame first.
            if matches!(address, Address::Inproc(_)) {
                assert_eq!(
                    server.recv().await.unwrap().map(ReceivedFrame::into_frame).as_ref(),
                    Some(&sent[0])
                );
                client.feed(back.unwrap()).await.unwrap();
                for expected in &sent[1..] {
                    assert_eq!(
                        server.recv().await.unwrap().map(ReceivedFrame::into_frame).as_ref(),
                        Some(expected)
                    );
                }
            } else {
                client.feed(back.unwrap()).await.unwrap();
                client.flush().await.unwrap();
                for expected in &sent {
                    assert_eq!(
                        server.recv().await.unwrap().map(ReceivedFrame::into_frame).as_ref(),
                        Some(expected),
                        "{address}"
                    );
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn try_feed_refuses_a_frame_over_the_limits_and_queues_nothing() {
    bounded(async {
        let config = TransportConfig::default().limits(Limits::default().max_payload_len(64));
        for address in addresses() {
            let (mut client, mut server) = pair(&address, &config).await;
            let error = client.try_feed(frame(1, Bytes::from(vec![0; 65]))).unwrap_err();
            assert!(matches!(error, TransportError::Protocol { .. }), "{address}: {error}");
            let fine = frame(2, Bytes::from_static(b"fine"));
            assert!(client.try_feed(fine.clone()).unwrap().is_none(), "{address}");
            client.flush().await.unwrap();
            assert_eq!(
                server.recv().await.unwrap().map(ReceivedFrame::into_frame),
                Some(fine),
                "{address}: only what fit"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn frames_encoded_ahead_go_out_in_order_between_fed_frames_up_to_the_high_water_mark() {
    bounded(async {
        let config = TransportConfig::default().write_high_water(1024);
        for address in addresses() {
            let (client, mut server) = pair(&address, &config).await;
            let (_reader, mut writer) = client.split();
            let Some(encoder) = writer.encoder() else {
                // In-process, frames are values: bytes are refused and nothing is taken.
                assert!(matches!(address, Address::Inproc(_)), "{address}");
                let mut encoded = WriteBuf::new();
                FrameEncoder::default().encode(frame(1, Bytes::new()), &mut encoded).unwrap();
                let unsupported = |error: &TransportError| {
                    matches!(error, TransportError::Io { source, .. }
                        if source.kind() == std::io::ErrorKind::Unsupported)
                };
                let error = writer.try_feed_encoded(&mut encoded).unwrap_err();
                assert!(unsupported(&error), "{address}: {error}");
                let error = writer.feed_encoded(&mut encoded).await.unwrap_err();
                assert!(unsupported(&error), "{address}: {error}");
                assert!(!encoded.is_empty(), "{address}: nothing taken");
                continue;
            };
            // Frame 1 fed; 2 and 3 encoded ahead (3 under the id given, not its own); 4 fed.
            let sent: Vec<Frame> =
                (1..=4).map(|id| frame(id, Bytes::from(vec![id as u8; 400]))).collect();
            writer.try_feed(sent[0].clone()).unwrap();
            let mut encoded = WriteBuf::new();
            encoder.encode_borrowed(&sent[1], 2, &mut encoded).unwrap();
            encoder
                .encode_borrowed(&frame(99, Bytes::from(vec![3; 400])), 3, &mut encoded)
                .unwrap();
            assert!(writer.try_feed_encoded(&mut encoded).unwrap(), "{address}: below the mark");
            assert!(encoded.is_empty(), "{address}: all taken");
            // Now past the mark: more is refused untouched until a flush.
            encoder.encode_borrowed(&sent[3], 4, &mut encoded).unwrap();
            let left = encoded.remaining();
            assert!(!writer.try_feed_encoded(&mut encoded).unwrap(), "{address}: at the mark");
            assert_eq!(encoded.remaining(), left, "{address}: nothing taken");
            writer.feed_encoded(&mut encoded).await.unwrap();
            writer.flush().await.unwrap();
            for expected in &sent {
                assert_eq!(
                    server.recv().await.unwrap().map(ReceivedFrame::into_frame).as_ref(),
                    Some(expected),
                    "{address}"
                );
            }
        }
    })
    .await;
}

/// `try_flush` writes what the socket takes at once and leaves the rest queued: 16 MiB to a
/// peer that is not reading does not fit in the sockets' buffers, and it says so without
/// waiting. `flush` then sends the rest once the peer reads, and the frame arrives whole.
/// In-process, a fed frame is already handed over: there is nothing to flush.
#[tokio::test]
async fn try_flush_writes_what_the_socket_takes_and_leaves_the_rest_queued() {
    bounded(async {
        let config = TransportConfig::default();
        let payload = Bytes::from((0..16usize << 20).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        for address in addresses() {
            let (client, mut server) = pair(&address, &config).await;
            let (_reader, mut writer) = client.split();
            let sent = frame(1, payload.clone());
            assert!(writer.try_feed(sent.clone()).unwrap().is_none(), "{address}");
            let in_process = matches!(address, Address::Inproc(_));
            assert_eq!(writer.try_flush().unwrap(), in_process, "{address}: all written at once?");
            let (received, flushed) = tokio::join!(server.recv(), writer.flush());
            flushed.unwrap();
            assert!(
                received.unwrap().map(ReceivedFrame::into_frame) == Some(sent),
                "{address}: the frame arrives whole"
            );
            assert!(writer.try_flush().unwrap(), "{address}: nothing left to write");
        }
    })
    .await;
}
