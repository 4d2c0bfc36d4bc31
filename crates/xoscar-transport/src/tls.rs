//! TLS for TCP connections (feature `tls`), with rustls (the `ring` provider): a server
//! certificate, and optionally client certificates (mutual TLS). Our own handshake, with its
//! authentication, runs inside the TLS session.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why a [`TlsConfig`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input held no certificate, no key, or could not be parsed.
    #[error("bad PEM for the {what}: {reason}")]
    Pem {
        /// What it was meant to be (`certificate chain`, `private key`, `trusted CA`).
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the settings (e.g. a key that does not match its certificate).
    #[error("TLS settings refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// Client certificates were required with no CA to check them against.
    #[error("client certificates are required but no CA is trusted to check them")]
    NoClientCa,
    /// The name to check the server's certificate against is not a DNS name or IP address.
    #[error("{0:?} is not a server name (a DNS name or an IP address)")]
    BadServerName(String),
}

/// TLS settings before they are checked, tonic-`ServerTlsConfig` style; [`TlsConfig::build`]
/// turns them into a [`Tls`] for [`crate::TransportConfig::tls`]. One value serves both
/// roles, since a pool both listens and dials.
///
/// ```no_run
/// use xoscar_transport::{TlsConfig, TransportConfig};
/// let (cert, key, ca) = (std::fs::read("pool.pem")?, std::fs::read("pool.key")?, std::fs::read("ca.pem")?);
/// let tls = TlsConfig::new().identity(&cert, &key).trust(&ca).build()?;
/// let config = TransportConfig::default().tls(Some(tls));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default, Clone)]
pub struct TlsConfig {
    identity: Option<(Vec<u8>, Vec<u8>)>,
    trust: Vec<Vec<u8>>,
    require_client_certificates: bool,
    server_name: Option<String>,
}

impl TlsConfig {
    /// No identity, no trusted CA, client certificates not required.
    pub fn new() -> Self {
        Self::default()
    }

    /// This end's certificate chain and private key (PEM): what listeners serve, and what
    /// dials present when the server asks for a client certificate. A listener needs one.
    /// Default: none.
    pub fn identity(mut self, cert_chain_pem: &[u8], key_pem: &[u8]) -> Self {
        self.identity = Some((cert_chain_pem.to_vec(), key_pem.to_vec()));
        self
    }

    /// Trusts the CA certificates in `ca_pem` for the peer's certificate: a server's on a
    /// dial, a client's when [`Self::require_client_certificates`] is on. May be called
    /// several times. A dial needs at least one. Default: none (the system's roots are not
    /// used: pools trust what their deployment names).
    pub fn trust(mut self, ca_pem: &[u8]) -> Self {
        self.trust.push(ca_pem.to_vec());
        self
    }

    /// Listeners ask every dialer for a certificate signed by a trusted CA, and refuse one
    /// without (mutual TLS). Default: off.
    pub fn require_client_certificates(mut self, required: bool) -> Self {
        self.require_client_certificates = required;
        self
    }

    /// The name a dial checks the server's certificate against. Default: the host of the
    /// address dialled (a DNS name or an IP address, which the certificate must name).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Parses and checks everything.
    pub fn build(self) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let identity = match &self.identity {
            Some((chain, key)) => {
                let chain = CertificateDer::pem_slice_iter(chain)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| pem("certificate chain", e))?;
                if chain.is_empty() {
                    return Err(TlsError::Pem {
                        what: "certificate chain",
                        reason: "no certificate".into(),
                    });
                }
                let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| pem("private key", e))?;
                Some((chain, key))
            }
            None => None,
        };
        let mut roots = RootCertStore::empty();
        for ca in &self.trust {
            for cert in CertificateDer::pem_slice_iter(ca) {
                roots.add(cert.map_err(|e| pem("trusted CA", e))?)?;
            }
        }
        let roots = Arc::new(roots);
        let server = match &identity {
            Some((chain, key)) => {
                let builder = ServerConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()?;
                let builder = if self.require_client_certificates {
                    if roots.is_empty() {
                        return Err(TlsError::NoClientCa);
                    }
                    let verifier = WebPkiClientVerifier::builder_with_provider(
                        roots.clone(),
                        provider.clone(),
                    )
                    .build()
                    .map_err(|e| rustls::Error::General(e.to_string()))?;
                    builder.with_client_cert_verifier(verifier)
                } else {
                    builder.with_no_client_auth()
                };
                Some(Arc::new(builder.with_single_cert(chain.clone(), key.clone_key())?))
            }
            None => None,
        };
        let client = if roots.is_empty() {
            None
        } else {
            let builder = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots);
            Some(Arc::new(match identity {
                Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
                None => builder.with_no_client_auth(),
            }))
        };
        let server_name = match self.server_name {
            Some(name) => Some(
                ServerName::try_from(name.clone()).map_err(|_| TlsError::BadServerName(name))?,
            ),
            None => None,
        };
        Ok(Tls { server, client, server_name })
    }
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("TlsConfig")
            .field("identity", &self.identity.as_ref().map(|_| "<certificate and key>"))
            .field("trusted_cas", &self.trust.len())
            .field("require_client_certificates", &self.require_client_certificates)
            .field("server_name", &self.server_name)
            .finish()
    }
}

fn pem(what: &'static str, error: rustls::pki_types::pem::Error) -> TlsError {
    TlsError::Pem { what, reason: error.to_string() }
}

/// Checked TLS settings ([`TlsConfig::build`]), or rustls configurations of your own
/// ([`Tls::from_rustls`]). Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    pub(crate) server: Option<Arc<ServerConfig>>,
    pub(crate) client: Option<Arc<ClientConfig>>,
    pub(crate) server_name: Option<ServerName<'static>>,
}

impl Tls {
    /// Uses these rustls configurations as they are: `server` for listeners, `client` for
    /// dials (checking the server's certificate against the dialled host's name).
    pub fn from_rustls(
        server: Option<Arc<ServerConfig>>,
        client: Option<Arc<ClientConfig>>,
    ) -> Self {
        Tls { server, client, server_name: None }
    }

    /// What a listener serves, `None` when this end has no certificate.
    pub(crate) fn server(&self) -> Option<&Arc<ServerConfig>> {
        self.server.as_ref()
    }

    /// The name a dial to `host` checks the certificate against.
    pub(crate) fn name_for(&self, host: &str) -> Option<ServerName<'static>> {
        match &self.server_name {
            Some(name) => Some(name.clone()),
            None => ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
                .ok()
                .map(|name| name.to_owned()),
        }
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("serves", &self.server.is_some())
            .field("dials", &self.client.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// The TLS client side of a fresh TCP connection to `host`.
pub(crate) async fn connect(
    stream: tokio::net::TcpStream,
    tls: &Tls,
    host: &str,
    peer: &str,
) -> Result<(crate::stream::BoxRead, crate::stream::BoxWrite), crate::TransportError> {
    let fail = |reason: String| crate::TransportError::Tls { peer: peer.to_string(), reason };
    let Some(client) = &tls.client else {
        return Err(fail(
            "TLS is on but no CA is trusted to check the server (TlsConfig::trust)".into(),
        ));
    };
    let Some(name) = tls.name_for(host) else {
        return Err(fail(format!("{host:?} is not a name to check a certificate against")));
    };
    let connector = tokio_rustls::TlsConnector::from(client.clone());
    let stream = connector.connect(name, stream).await.map_err(|e| fail(e.to_string()))?;
    let (read, write) = tokio::io::split(stream);
    Ok((Box::new(read), Box::new(write)))
}

/// The TLS server side of an accepted TCP connection.
pub(crate) async fn accept(
    stream: tokio::net::TcpStream,
    server: Arc<ServerConfig>,
    peer: &str,
) -> Result<(crate::stream::BoxRead, crate::stream::BoxWrite), crate::TransportError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let stream = acceptor.accept(stream).await.map_err(|error| crate::TransportError::Tls {
        peer: peer.to_string(),
        reason: error.to_string(),
    })?;
    let (read, write) = tokio::io::split(stream);
    Ok((Box::new(read), Box::new(write)))
}
