//! TLS on TCP (feature `tls`) with certificates made at test time (rcgen): a trusted server
//! certificate connects and carries frames, our authentication inside; an untrusted one, a
//! wrong name, a plain-TCP peer and a missing client certificate (when required) are each
//! refused with a TLS error; mutual TLS connects with a client certificate signed by the CA.
#![cfg(feature = "tls")]

mod common;

use bytes::Bytes;
use common::bounded;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use xoscar_transport::{
    Address, AuthToken, Channel, TlsConfig, TransportConfig, TransportError, connect, listen,
};
use xoscar_wire::Frame;

/// A CA, and PEM certificate + key pairs it signs.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        Pki { ca_pem: ca.pem(), issuer: Issuer::new(params, key) }
    }

    /// A certificate for `names` (DNS names or IP addresses) signed by this CA.
    fn issue(&self, names: &[&str]) -> (String, String) {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn tls(config: TlsConfig) -> TransportConfig {
    TransportConfig::default().tls(Some(config.build().unwrap()))
}

/// Dials `dialer` to a listener made with `acceptor`: both ends' results.
async fn pair(
    dialer: TransportConfig,
    acceptor: TransportConfig,
) -> (Result<Channel, TransportError>, Result<Channel, TransportError>) {
    let mut listener = listen(&"127.0.0.1:0".parse().unwrap(), &acceptor).await.unwrap();
    let target = listener.local_addr().clone();
    let dial = tokio::spawn(async move { connect(&target, &dialer).await });
    let accepted = listener.accept().await.unwrap().handshake().await;
    (dial.await.unwrap(), accepted)
}

fn tls_error(result: Result<Channel, TransportError>) -> String {
    match result {
        Err(TransportError::Tls { reason, .. }) => reason,
        Err(other) => panic!("expected a TLS error, got {other}"),
        Ok(_) => panic!("expected a TLS error, got a channel"),
    }
}

#[tokio::test]
async fn a_trusted_server_certificate_connects_and_carries_frames_with_auth_inside() {
    bounded(async {
        let pki = Pki::new("test CA");
        let (cert, key) = pki.issue(&["127.0.0.1"]);
        let secret = Some(AuthToken::new("tls-inner-secret-0123").unwrap());
        let server = tls(TlsConfig::new().identity(cert.as_bytes(), key.as_bytes()))
            .auth_token(secret.clone());
        let client = tls(TlsConfig::new().trust(pki.ca_pem.as_bytes())).auth_token(secret);
        let (dialed, accepted) = pair(client, server).await;
        let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
        let big = Bytes::from(vec![7u8; 3 << 20]);
        dialed.send(Frame::request(1, Bytes::from_static(b"hi"), vec![big.clone()])).await.unwrap();
        let frame = accepted.recv().await.unwrap().expect("a frame");
        assert_eq!(frame, Frame::request(1, Bytes::from_static(b"hi"), vec![big]));

        // TLS does not stand in for the secret: another one is refused inside the session.
        let server = tls(TlsConfig::new().identity(cert.as_bytes(), key.as_bytes()))
            .auth_token(Some(AuthToken::new("tls-inner-secret-0123").unwrap()));
        let client = tls(TlsConfig::new().trust(pki.ca_pem.as_bytes()))
            .auth_token(Some(AuthToken::new("tls-other-secret-0123").unwrap()));
        let (dialed, accepted) = pair(client, server).await;
        assert!(matches!(dialed, Err(TransportError::AuthFailed { .. })));
        assert!(matches!(accepted, Err(TransportError::AuthFailed { .. })));
    })
    .await;
}

#[tokio::test]
async fn untrusted_or_misnamed_certificates_and_plain_peers_are_refused() {
    bounded(async {
        let (pki, stranger) = (Pki::new("test CA"), Pki::new("another CA"));
        let (cert, key) = pki.issue(&["127.0.0.1"]);
        let server = || tls(TlsConfig::new().identity(cert.as_bytes(), key.as_bytes()));

        // A CA the client does not trust.
        let client = tls(TlsConfig::new().trust(stranger.ca_pem.as_bytes()));
        let (dialed, accepted) = pair(client, server()).await;
        assert!(tls_error(dialed).to_lowercase().contains("certificate"));
        tls_error(accepted);

        // The right CA, a name the certificate does not carry.
        let client = tls(TlsConfig::new().trust(pki.ca_pem.as_bytes()).server_name("pool.other"));
        let (dialed, _) = pair(client, server()).await;
        assert!(tls_error(dialed).to_lowercase().contains("certificate"));

        // A plain TCP dialer: the TLS listener refuses it; it sees the connection fail.
        let (dialed, accepted) = pair(TransportConfig::default(), server()).await;
        assert!(dialed.is_err());
        tls_error(accepted);
    })
    .await;
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate_from_a_trusted_ca() {
    bounded(async {
        let pki = Pki::new("test CA");
        let (server_cert, server_key) = pki.issue(&["127.0.0.1"]);
        let (client_cert, client_key) = pki.issue(&["worker-1"]);
        let server = || {
            tls(TlsConfig::new()
                .identity(server_cert.as_bytes(), server_key.as_bytes())
                .trust(pki.ca_pem.as_bytes())
                .require_client_certificates(true))
        };
        let anonymous = tls(TlsConfig::new().trust(pki.ca_pem.as_bytes()));
        let (dialed, accepted) = pair(anonymous, server()).await;
        assert!(tls_error(accepted).to_lowercase().contains("certificate"));
        assert!(dialed.is_err() || dialed.unwrap().recv().await.is_err());

        let known = tls(TlsConfig::new()
            .identity(client_cert.as_bytes(), client_key.as_bytes())
            .trust(pki.ca_pem.as_bytes()));
        let (dialed, accepted) = pair(known, server()).await;
        let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
        accepted.send(Frame::request(9, Bytes::from_static(b"ok"), vec![])).await.unwrap();
        assert_eq!(
            dialed.recv().await.unwrap().unwrap(),
            Frame::request(9, Bytes::from_static(b"ok"), vec![])
        );
    })
    .await;
}

#[tokio::test]
async fn a_listener_with_tls_but_no_certificate_is_refused_at_once() {
    let pki = Pki::new("ca");
    let only_trust = tls(TlsConfig::new().trust(pki.ca_pem.as_bytes()));
    let error = listen(&"127.0.0.1:0".parse().unwrap(), &only_trust).await.unwrap_err();
    assert!(matches!(error, TransportError::Tls { .. }), "{error}");
}

#[test]
fn bad_settings_are_clear_errors() {
    use xoscar_transport::TlsError;
    let garbage = TlsConfig::new().identity(b"not pem", b"not pem").build();
    assert!(matches!(garbage, Err(TlsError::Pem { .. })), "{garbage:?}");
    let no_ca = TlsConfig::new().require_client_certificates(true);
    let pki = Pki::new("ca");
    let (cert, key) = pki.issue(&["x"]);
    let no_ca = no_ca.identity(cert.as_bytes(), key.as_bytes()).build();
    assert!(matches!(no_ca, Err(TlsError::NoClientCa)), "{no_ca:?}");
    let _ = Address::tcp(([127, 0, 0, 1], 1).into());
}
