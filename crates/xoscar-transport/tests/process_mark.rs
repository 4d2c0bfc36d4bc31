//! The process mark in the handshake (`Hello.process`): both ends of a connection within one
//! process know it, and a peer with another mark (or none) is taken for another process.

mod common;

use common::{addresses, bounded};
use xoscar_transport::{TransportConfig, connect, listen};

#[tokio::test]
async fn both_ends_of_a_connection_within_this_process_know_it() {
    bounded(async {
        let config = TransportConfig::default();
        for address in addresses() {
            let mut listener = listen(&address, &config).await.unwrap();
            let target = listener.local_addr().clone();
            let dial = tokio::spawn({
                let config = config.clone();
                async move { connect(&target, &config).await }
            });
            let accepted = listener.accept().await.unwrap().handshake().await.unwrap();
            let dialled = dial.await.unwrap().unwrap();
            assert!(accepted.peer_in_this_process(), "{address}: accepting end");
            assert!(dialled.peer_in_this_process(), "{address}: dialling end");
        }
    })
    .await;
}

#[cfg(any(feature = "tcp", feature = "uds"))]
mod raw {
    use bytes::{Buf, BytesMut};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use xoscar_transport::{TransportConfig, listen};
    use xoscar_wire::{Handshake, Limits, pb};

    use super::common::{bounded, raw_dial, socket_addresses};

    /// Connects a raw peer whose `Hello` carries `mark`; the accepted channel, and the mark of
    /// the `Hello` our end sent it.
    async fn accepted_with(
        address: &xoscar_transport::Address,
        mark: u64,
    ) -> (xoscar_transport::Channel, u64) {
        let mut listener = listen(address, &TransportConfig::default()).await.unwrap();
        let mut raw = raw_dial(listener.local_addr()).await;
        let mut hello = BytesMut::new();
        Handshake::new(pb::Hello { process: mark, ..Default::default() }).encode(&mut hello);
        raw.write_all(&hello).await.unwrap();
        let channel = listener.accept().await.unwrap().handshake().await.unwrap();
        let mut ours = BytesMut::new();
        let theirs = loop {
            if let Some(theirs) = Handshake::decode(&mut ours, &Limits::default()).unwrap() {
                break theirs;
            }
            assert!(raw.read_buf(&mut ours).await.unwrap() > 0, "our handshake comes whole");
        };
        assert!(!ours.has_remaining(), "nothing follows our handshake unasked");
        (channel, theirs.hello.process)
    }

    #[tokio::test]
    async fn a_peer_with_another_mark_or_none_is_another_process() {
        bounded(async {
            for address in socket_addresses() {
                let (unmarked, ours) = accepted_with(&address, 0).await;
                assert_ne!(ours, 0, "{address}: our Hello carries our mark");
                assert!(!unmarked.peer_in_this_process(), "{address}: a peer with no mark");
                let (other, again) = accepted_with(&address, ours.wrapping_add(1)).await;
                assert_eq!(again, ours, "{address}: one mark for the whole process");
                assert!(!other.peer_in_this_process(), "{address}: a peer with another mark");
                // Our own mark, echoed by a stranger, is believed: the mark tunes batching
                // only, so believing it gains the peer nothing (docs/security.md).
                let (echoed, _) = accepted_with(&address, ours).await;
                assert!(echoed.peer_in_this_process(), "{address}: a peer with our mark");
            }
        })
        .await;
    }
}
