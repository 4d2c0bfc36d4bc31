//! 64 MiB payloads echo intact on every transport. Kept in its own binary: it is heavy.

mod common;

use bytes::Bytes;
use common::{addresses, bounded, echo_server};
use xoscar_transport::{TransportConfig, connect};
use xoscar_wire::Frame;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_payload_echoes_intact_on_every_transport() {
    bounded(async {
        let config = TransportConfig::default();
        let payload: Bytes = (0..64u32 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
        for address in addresses() {
            let (local, server) = echo_server(&address, &config).await;
            let mut channel = connect(&local, &config).await.unwrap();
            let sent = Frame::request(
                1,
                Bytes::from_static(b"big"),
                vec![payload.clone(), Bytes::from_static(b"tail")],
            );
            channel.send(sent.clone()).await.unwrap();
            let echoed = channel.recv().await.unwrap().expect("an echo").into_frame();
            assert_eq!(echoed.payloads.len(), 2);
            assert!(echoed.payloads[0] == payload, "{local}: 64 MiB payload differs");
            assert_eq!(echoed, sent);
            server.abort();
        }
    })
    .await;
}
