//! TLS for SIP (RFC 3261 §26.2, `sips:` per RFC 5630) and MSRP (RFC 4975 §14) streams:
//! rustls with the `ring` provider, TLS 1.2 and 1.3.
//!
//! The IO layer does the handshakes; the core sees plaintext on streams of kind
//! [`StreamKind::SipTls`](crate::transport::StreamKind::SipTls) or
//! [`StreamKind::MsrpTls`](crate::transport::StreamKind::MsrpTls). As a server it presents
//! the configured chain and asks no client certificate (SIP clients authenticate with
//! digest, RFC 3261 §26.3.2.2; MSRP sessions by their unguessable session id in a path that
//! was exchanged over the secured SIP leg). As a client it checks the peer's chain against
//! the configured CA roots (or the Web PKI roots) and the peer's certificate against the IP
//! address it connects to: the sans-IO core routes to addresses, never to names.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A configured file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A PEM file holds no certificate (or no private key) that could be read.
    #[error("{what}: {reason}")]
    Pem {
        /// Which input (certificate chain, key, CA roots).
        what: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// rustls refused the configuration (e.g. a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The server's TLS identity and the roots it trusts as a client. Cheap to clone.
#[derive(Clone)]
pub struct TlsSetup {
    pub(super) acceptor: Option<TlsAcceptor>,
    pub(super) connector: TlsConnector,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("server", &self.acceptor.is_some())
            .finish_non_exhaustive()
    }
}

// ring rather than aws-lc-rs: it builds with a C compiler alone, where aws-lc-rs wants
// CMake or a prebuilt library; the price is no post-quantum key exchange (hence deprecated).
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // Named explicitly so that another crate enabling a second provider cannot make the
    // process-wide default ambiguous.
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

impl TlsSetup {
    /// A setup from PEM text: `identity` is the certificate chain (leaf first) and its
    /// private key, needed to accept TLS; `ca` the roots that outgoing connections trust
    /// (`None`: the Web PKI roots of `webpki-roots`).
    pub fn from_pem(identity: Option<(&[u8], &[u8])>, ca: Option<&[u8]>) -> Result<Self, TlsError> {
        let acceptor = match identity {
            Some((chain, key)) => {
                let certs = CertificateDer::pem_slice_iter(chain)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| TlsError::Pem {
                        what: "certificate chain",
                        reason: e.to_string(),
                    })?;
                if certs.is_empty() {
                    return Err(TlsError::Pem {
                        what: "certificate chain",
                        reason: "no CERTIFICATE block".into(),
                    });
                }
                let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsError::Pem {
                    what: "private key",
                    reason: e.to_string(),
                })?;
                let cfg = ServerConfig::builder_with_provider(provider())
                    .with_protocol_versions(VERSIONS)?
                    .with_no_client_auth()
                    .with_single_cert(certs, key)?;
                Some(TlsAcceptor::from(Arc::new(cfg)))
            }
            None => None,
        };
        let mut roots = RootCertStore::empty();
        match ca {
            Some(pem) => {
                for c in CertificateDer::pem_slice_iter(pem) {
                    let c = c.map_err(|e| TlsError::Pem {
                        what: "CA roots",
                        reason: e.to_string(),
                    })?;
                    roots.add(c)?;
                }
                if roots.is_empty() {
                    return Err(TlsError::Pem {
                        what: "CA roots",
                        reason: "no CERTIFICATE block".into(),
                    });
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsSetup {
            acceptor,
            connector: TlsConnector::from(Arc::new(client)),
        })
    }

    /// [`TlsSetup::from_pem`] reading PEM files: `cert` and `key` together or neither.
    pub fn from_files(
        identity: Option<(&Path, &Path)>,
        ca: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| TlsError::Read {
                path: p.display().to_string(),
                source,
            })
        };
        let identity = match identity {
            Some((c, k)) => Some((read(c)?, read(k)?)),
            None => None,
        };
        let ca = ca.map(read).transpose()?;
        Self::from_pem(
            identity.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
            ca.as_deref(),
        )
    }

    /// Whether this setup can accept TLS (it has a certificate and key).
    pub fn can_accept(&self) -> bool {
        self.acceptor.is_some()
    }
}
