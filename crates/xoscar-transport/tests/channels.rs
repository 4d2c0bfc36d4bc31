//! Every transport: echo, concurrency, clean end of stream, refused dials, bad handshakes,
//! malformed frames, address errors.

mod common;

use bytes::Bytes;
use common::{addresses, bounded, echo_server};
use xoscar_transport::{Address, TransportConfig, TransportError, connect, listen};
use xoscar_wire::{Envelope, Frame, Limits, ReceivedFrame, pb};

fn frame(id: u64, payload: &'static [u8]) -> Frame {
    Frame::request(id, Bytes::from_static(b"hdr"), vec![Bytes::from_static(payload)])
}

#[tokio::test]
async fn small_frames_echo_on_every_transport() {
    bounded(async {
        let config = TransportConfig::default();
        for address in addresses() {
            let (local, server) = echo_server(&address, &config).await;
            let mut channel = connect(&local, &config).await.unwrap();
            for id in 0..100 {
                let sent = frame(id, b"0123456789abcdef");
                channel.send(sent.clone()).await.unwrap();
                assert_eq!(
                    channel.recv().await.unwrap().map(ReceivedFrame::into_frame),
                    Some(sent),
                    "{local}"
                );
            }
            // Feed several, flush once: they arrive in order.
            let control = Frame::new(Envelope::Ping(pb::Ping { nonce: 5 }), vec![]);
            for id in 0..10 {
                channel.feed(frame(id, b"x")).await.unwrap();
            }
            channel.feed(control.clone()).await.unwrap();
            channel.flush().await.unwrap();
            for id in 0..10 {
                assert_eq!(
                    channel.recv().await.unwrap().map(ReceivedFrame::into_frame),
                    Some(frame(id, b"x"))
                );
            }
            assert_eq!(channel.recv().await.unwrap().map(ReceivedFrame::into_frame), Some(control));
            server.abort();
        }
    })
    .await;
}

/// Large and small frames fed back to back, faster than they are read, echo whole and in
/// order. A reader sizes its reads by what it knows: between frames a read is capped, inside
/// a frame it takes what fits. Frames here straddle every such boundary: 1 MiB frames, frames
/// just under and over the cap, runs of tiny frames between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_and_small_frames_back_to_back_echo_whole_and_in_order() {
    bounded(async {
        let config = TransportConfig::default();
        let mut sizes = vec![1 << 20, 10, 1 << 20, 300 << 10, (64 << 10) - 40, 64 << 10, 3];
        sizes.extend(std::iter::repeat_n(20, 200));
        sizes.extend([(64 << 10) + 1, 1 << 20, 0, 1 << 20]);
        let sent: Vec<Frame> = sizes
            .iter()
            .enumerate()
            .map(|(id, &len)| {
                let payload: Vec<u8> = (0..len).map(|i| (i * 7 + id) as u8).collect();
                Frame::request(id as u64, Bytes::from_static(b"hdr"), vec![payload.into()])
            })
            .collect();
        for address in addresses() {
            let (local, server) = echo_server(&address, &config).await;
            let (mut reader, mut writer) = connect(&local, &config).await.unwrap().split();
            let feeding = tokio::spawn({
                let sent = sent.clone();
                async move {
                    for frame in sent {
                        writer.feed(frame).await.unwrap();
                    }
                    writer.flush().await.unwrap();
                    writer
                }
            });
            for (at, expected) in sent.iter().enumerate() {
                let echoed = reader.recv().await.unwrap().map(ReceivedFrame::into_frame);
                assert!(echoed.as_ref() == Some(expected), "{local}: frame {at} differs");
            }
            drop(feeding.await.unwrap());
            server.abort();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_channels_on_every_transport() {
    bounded(async {
        let config = TransportConfig::default();
        for address in addresses() {
            let (local, server) = echo_server(&address, &config).await;
            let clients: Vec<_> = (0..64u64)
                .map(|client| {
                    let (local, config) = (local.clone(), config.clone());
                    tokio::spawn(async move {
                        let (mut reader, mut writer) = connect(&local, &config).await?.split();
                        let sender = tokio::spawn(async move {
                            for id in 0..50 {
                                writer
                                    .send(Frame::request(client * 1000 + id, Bytes::new(), vec![]))
                                    .await?;
                            }
                            Ok::<_, TransportError>(writer)
                        });
                        for id in 0..50 {
                            let Some(Frame { envelope: Envelope::Request(r), .. }) =
                                reader.recv().await?.map(ReceivedFrame::into_frame)
                            else {
                                panic!("expected the echoed request");
                            };
                            assert_eq!(r.id, client * 1000 + id);
                        }
                        sender.await.unwrap()?;
                        Ok::<_, TransportError>(())
                    })
                })
                .collect();
            for client in clients {
                client.await.unwrap().unwrap_or_else(|e| panic!("{local}: {e}"));
            }
            server.abort();
        }
    })
    .await;
}

#[tokio::test]
async fn peer_close_is_a_clean_end_of_stream() {
    bounded(async {
        let config = TransportConfig::default();
        for address in addresses() {
            let mut listener = listen(&address, &config).await.unwrap();
            let local = listener.local_addr().clone();
            let client = tokio::spawn({
                let config = config.clone();
                async move { connect(&local, &config).await }
            });
            let server = listener.accept().await.unwrap().handshake().await.unwrap();
            let mut client = client.await.unwrap().unwrap();

            // Closing the writer after a frame: the frame, then a clean end.
            let (mut server_reader, mut server_writer) = server.split();
            server_writer.send(frame(1, b"last")).await.unwrap();
            server_writer.close().await.unwrap();
            assert_eq!(
                client.recv().await.unwrap().map(ReceivedFrame::into_frame),
                Some(frame(1, b"last"))
            );
            assert_eq!(
                client.recv().await.unwrap().map(ReceivedFrame::into_frame),
                None,
                "{address}"
            );

            // Dropping a whole channel ends the stream too.
            drop(client);
            assert_eq!(
                server_reader.recv().await.unwrap().map(ReceivedFrame::into_frame),
                None,
                "{address}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn dialling_nobody_is_connection_refused() {
    bounded(async {
        let config = TransportConfig::default();
        for address in addresses() {
            // Bind to learn a free address, then let it go.
            let listener = listen(&address, &config).await.unwrap();
            let local = listener.local_addr().clone();
            drop(listener);
            let error = connect(&local, &config).await.unwrap_err();
            assert!(
                matches!(&error, TransportError::ConnectionRefused { address } if *address == local.to_string()),
                "{local}: {error}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn frames_over_the_limits_are_refused_on_every_transport() {
    bounded(async {
        let config = TransportConfig::default().limits(Limits::default().max_payload_len(1024));
        for address in addresses() {
            let (local, server) = echo_server(&address, &config).await;
            let mut channel = connect(&local, &config).await.unwrap();
            let big = Frame::request(1, Bytes::new(), vec![Bytes::from(vec![0; 1025])]);
            let error = channel.send(big).await.unwrap_err();
            assert!(matches!(error, TransportError::Protocol { .. }), "{local}: {error}");
            // The channel still works: nothing of the refused frame was queued.
            channel.send(frame(2, b"ok")).await.unwrap();
            assert_eq!(
                channel.recv().await.unwrap().map(ReceivedFrame::into_frame),
                Some(frame(2, b"ok"))
            );
            server.abort();
        }
    })
    .await;
}

#[tokio::test]
async fn listening_twice_on_one_address_is_address_in_use() {
    bounded(async {
        let config = TransportConfig::default();
        for address in addresses() {
            let first = listen(&address, &config).await.unwrap();
            let error = listen(first.local_addr(), &config).await.unwrap_err();
            assert!(matches!(error, TransportError::AddressInUse { .. }), "{address}: {error}");
        }
    })
    .await;
}

#[test]
fn bad_address_text_is_a_typed_error() {
    let error = "tcp://nope".parse::<Address>().unwrap_err();
    let error = TransportError::from(error);
    assert!(error.to_string().contains("\"tcp://nope\""), "{error}");
}

#[cfg(not(feature = "tcp"))]
#[tokio::test]
async fn a_compiled_out_transport_is_unsupported() {
    let error =
        connect(&"127.0.0.1:1".parse().unwrap(), &TransportConfig::default()).await.unwrap_err();
    assert!(matches!(error, TransportError::Unsupported { feature: "tcp", .. }), "{error}");
}

#[cfg(not(feature = "inproc"))]
#[tokio::test]
async fn a_compiled_out_inproc_is_unsupported() {
    let error =
        listen(&"inproc://x".parse().unwrap(), &TransportConfig::default()).await.unwrap_err();
    assert!(matches!(error, TransportError::Unsupported { feature: "inproc", .. }), "{error}");
}
