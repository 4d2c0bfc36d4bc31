//! Who may connect. Shared-secret authentication in the handshake, over TCP and Unix sockets:
//! matching secrets connect; every mismatch is refused on both ends with a clear error; a
//! hostile peer cannot get a frame read without a valid proof; the secret never crosses the
//! wire. Listeners bind exactly the address given, and Unix sockets are their owner's.
#![cfg(any(feature = "tcp", feature = "uds"))]

mod common;

use bytes::{Bytes, BytesMut};
use common::{bounded, raw_dial, socket_addresses};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xoscar_transport::{Address, AuthToken, TransportConfig, TransportError, connect, listen};
use xoscar_wire::{AUTH_NONCE_LEN, AuthRole, Frame, Handshake, Limits, pb};

fn with(secret: Option<&str>) -> TransportConfig {
    TransportConfig::default().auth_token(secret.map(|s| AuthToken::new(s).unwrap()))
}

/// Dials `address` with `dialer` while its listener, made with `acceptor`, accepts once:
/// both ends' results.
async fn pair(
    address: &Address,
    dialer: TransportConfig,
    acceptor: TransportConfig,
) -> (
    Result<xoscar_transport::Channel, TransportError>,
    Result<xoscar_transport::Channel, TransportError>,
) {
    let mut listener = listen(address, &acceptor).await.unwrap();
    let target = listener.local_addr().clone();
    let dial = tokio::spawn(async move { connect(&target, &dialer).await });
    let accepted = listener.accept().await.unwrap().handshake().await;
    (dial.await.unwrap(), accepted)
}

fn reason(result: Result<xoscar_transport::Channel, TransportError>) -> &'static str {
    match result {
        Err(TransportError::AuthFailed { reason, .. }) => reason,
        Err(other) => panic!("expected an authentication failure, got {other}"),
        Ok(_) => panic!("expected an authentication failure, got a channel"),
    }
}

#[tokio::test]
async fn peers_with_the_same_secret_connect_and_exchange_frames() {
    bounded(async {
        for address in socket_addresses() {
            let (dialed, accepted) =
                pair(&address, with(Some("key-one-0123456789")), with(Some("key-one-0123456789")))
                    .await;
            let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
            dialed.send(Frame::request(3, Bytes::from_static(b"hi"), vec![])).await.unwrap();
            let frame = accepted.recv().await.unwrap().expect("a frame");
            assert_eq!(frame, Frame::request(3, Bytes::from_static(b"hi"), vec![]), "{address}");
            assert_eq!(accepted.peer_hello().unwrap().agent, dialed.peer_hello().unwrap().agent);
        }
    })
    .await;
}

#[tokio::test]
async fn another_secret_is_refused_on_both_ends() {
    bounded(async {
        for address in socket_addresses() {
            let (dialed, accepted) = pair(
                &address,
                with(Some("the-right-0123456789")),
                with(Some("the-wrong-0123456789")),
            )
            .await;
            assert!(reason(dialed).contains("another shared secret"), "{address}");
            assert!(reason(accepted).contains("another shared secret"), "{address}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_dialer_without_the_secret_is_told_to_set_one_and_the_acceptor_refuses_it() {
    bounded(async {
        for address in socket_addresses() {
            let (dialed, accepted) =
                pair(&address, with(None), with(Some("the-key-0123456789"))).await;
            assert!(reason(dialed).contains("XOSCAR_AUTH_TOKEN"), "{address}");
            let why = reason(accepted);
            assert!(why.contains("does not authenticate"), "{address}: {why}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_dialer_with_a_secret_refuses_an_acceptor_without_one() {
    bounded(async {
        for address in socket_addresses() {
            let (dialed, accepted) =
                pair(&address, with(Some("the-key-0123456789")), with(None)).await;
            assert!(reason(dialed).contains("does not authenticate"), "{address}");
            assert!(reason(accepted).contains("this end has none"), "{address}");
        }
    })
    .await;
}

/// Reads one handshake off a raw socket.
async fn read_handshake(raw: &mut (impl AsyncReadExt + Unpin), seen: &mut BytesMut) -> Handshake {
    loop {
        if let Some(handshake) = Handshake::decode(seen, &Limits::default()).unwrap() {
            return handshake;
        }
        assert!(raw.read_buf(seen).await.unwrap() > 0, "closed mid-handshake");
    }
}

fn encoded(hello: pb::Hello) -> BytesMut {
    let mut bytes = BytesMut::new();
    Handshake::new(hello).encode(&mut bytes);
    bytes
}

/// A raw dialer: our first handshake with `nonce`, then a proof; what the acceptor sent
/// back, to its close, and its verdict.
async fn raw_dialer(
    address: &Address,
    secret: &str,
    nonce: [u8; AUTH_NONCE_LEN],
    proof_of: impl FnOnce(&[u8]) -> Vec<u8>,
) -> (Vec<Handshake>, BytesMut, Result<(), TransportError>) {
    let mut listener = listen(address, &with(Some(secret))).await.unwrap();
    let mut raw = raw_dial(listener.local_addr()).await;
    let accepting = tokio::spawn(async move {
        let result = listener.accept().await.unwrap().handshake().await.map(drop);
        (result, listener)
    });
    let mut wire = BytesMut::new();
    let first = read_handshake(&mut raw, &mut wire).await;
    let mut sent =
        encoded(pb::Hello { auth_nonce: Bytes::copy_from_slice(&nonce), ..Default::default() });
    let proof = proof_of(&first.hello.auth_nonce);
    sent.extend_from_slice(&encoded(pb::Hello { auth_proof: proof.into(), ..Default::default() }));
    // A request frame pipelined behind the proof: it must not be read unless the proof holds.
    let mut request = xoscar_wire::WriteBuf::new();
    xoscar_wire::FrameEncoder::default()
        .encode(Frame::request(1, Bytes::from_static(b"x"), vec![]), &mut request)
        .unwrap();
    while bytes::Buf::has_remaining(&request) {
        let chunk = bytes::Buf::chunk(&request).to_vec();
        sent.extend_from_slice(&chunk);
        bytes::Buf::advance(&mut request, chunk.len());
    }
    raw.write_all(&sent).await.unwrap();
    let (result, listener) = accepting.await.unwrap();
    drop(listener);
    // Everything else the acceptor sent, to its close.
    while matches!(raw.read_buf(&mut wire).await, Ok(n) if n > 0) {}
    let mut handshakes = vec![first];
    while let Ok(Some(next)) = Handshake::decode(&mut wire, &Limits::default()) {
        handshakes.push(next);
    }
    (handshakes, wire, result)
}

#[tokio::test]
async fn the_acceptor_proves_the_secret_only_to_a_dialer_that_proved_it_and_never_sends_it() {
    bounded(async {
        let secret = "correct horse battery staple";
        let token = AuthToken::new(secret).unwrap();
        let ours = [7u8; AUTH_NONCE_LEN];
        for address in socket_addresses() {
            // A forged proof: refused, and the acceptor sent no proof of its own.
            let (handshakes, rest, result) =
                raw_dialer(&address, secret, ours, |_| vec![0; 32]).await;
            match result {
                Err(TransportError::AuthFailed { reason, .. }) => {
                    assert!(reason.contains("another shared secret"), "{address}: {reason}")
                }
                other => panic!("{address}: expected a refusal, got {other:?}"),
            }
            assert_eq!(handshakes.len(), 1, "{address}: a stranger got a proof");
            assert!(rest.is_empty(), "{address}: the acceptor sent more: {rest:?}");

            // A right proof (computed here as docs/wire.md says): the acceptor's own follows,
            // and checks out with the acceptor's label.
            let (handshakes, _, result) = raw_dialer(&address, secret, ours, |theirs| {
                token.proof(AuthRole::Dialer, &ours, theirs).to_vec()
            })
            .await;
            result.unwrap();
            assert_eq!(handshakes.len(), 2, "{address}");
            let acceptor_nonce = &handshakes[0].hello.auth_nonce;
            let proof = &handshakes[1].hello.auth_proof;
            assert!(token.verify(AuthRole::Acceptor, &ours, acceptor_nonce, proof));
            for handshake in &handshakes {
                let shown = format!("{:?}", handshake.hello);
                assert!(!shown.contains(secret), "{address}: the secret crossed the wire");
            }
        }
    })
    .await;
}

/// What an acceptor with a secret says of a raw dialer that sends `bytes` and waits.
async fn acceptor_verdict(address: &Address, bytes: &[u8]) -> TransportError {
    let mut listener = listen(address, &with(Some("the-key-0123456789"))).await.unwrap();
    let mut raw = raw_dial(listener.local_addr()).await;
    let accepting =
        tokio::spawn(async move { listener.accept().await.unwrap().handshake().await.map(drop) });
    raw.write_all(bytes).await.unwrap();
    accepting.await.unwrap().unwrap_err()
}

#[tokio::test]
async fn frames_in_place_of_a_proof_are_refused_as_a_bad_handshake() {
    bounded(async {
        for address in socket_addresses() {
            let mut hostile = encoded(pb::Hello {
                auth_nonce: Bytes::from_static(&[1; AUTH_NONCE_LEN]),
                ..Default::default()
            });
            hostile.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0, 8, 1]); // a request frame's bytes
            let error = acceptor_verdict(&address, &hostile).await;
            assert!(matches!(error, TransportError::Handshake { .. }), "{address}: {error}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_nonce_of_the_wrong_length_is_refused() {
    bounded(async {
        for address in socket_addresses() {
            let short = encoded(pb::Hello {
                auth_nonce: Bytes::from_static(&[1; 3]),
                ..Default::default()
            });
            match acceptor_verdict(&address, &short).await {
                TransportError::AuthFailed { reason, .. } => {
                    assert!(reason.contains("32 bytes"), "{address}: {reason}")
                }
                other => panic!("{address}: expected a refusal, got {other:?}"),
            }
        }
    })
    .await;
}

/// `/proc/net/tcp` or `tcp6` rows in LISTEN state for `port`: their local address in hex.
#[cfg(feature = "tcp")]
fn listening_on(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for row in text.lines().skip(1) {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let (local, state) = (fields[1], fields[3]);
            let (host, hex_port) = local.split_once(':').unwrap();
            if state == "0A" && u16::from_str_radix(hex_port, 16).unwrap() == port {
                found.push(host.to_owned());
            }
        }
    }
    found
}

#[cfg(feature = "tcp")]
#[tokio::test]
async fn listeners_bind_exactly_the_address_given() {
    bounded(async {
        let config = TransportConfig::default();
        let listener = listen(&"127.0.0.1:0".parse().unwrap(), &config).await.unwrap();
        let Address::Tcp { port, .. } = listener.local_addr().clone() else { unreachable!() };
        assert_eq!(listening_on(port), vec!["0100007F".to_owned()], "127.0.0.1 only");

        // `[::]` is every IPv6 address and no IPv4 one (IPV6_V6ONLY), where IPv6 exists.
        if let Ok(listener) = listen(&"[::]:0".parse().unwrap(), &config).await {
            let Address::Tcp { port, .. } = listener.local_addr().clone() else { unreachable!() };
            let v4 = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
            assert!(v4.is_err(), "an IPv4 dial reached a listener on [::]");
            drop(listener);
        }
    })
    .await;
}

#[cfg(feature = "uds")]
#[tokio::test]
async fn unix_sockets_are_for_their_owner_unless_configured() {
    use std::os::unix::fs::PermissionsExt;
    bounded(async {
        let path = std::env::temp_dir().join(format!("xoscar-mode-{}.sock", std::process::id()));
        let address = Address::unix(&path);
        let listener = listen(&address, &TransportConfig::default()).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(listener);
        let shared = TransportConfig::default().unix_socket_mode(0o660);
        let listener = listen(&address, &shared).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        drop(listener);
    })
    .await;
}
