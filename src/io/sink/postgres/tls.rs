//! TLS for the PostgreSQL sink, with libpq's `sslmode` meanings: `disable` (plain), `prefer`
//! (TLS when the server offers it, the default), `require` (TLS or no connection), each
//! without checking the server's certificate unless `sslrootcert` names the CA it must chain to
//! (then as `verify-ca`); `verify-ca` (it chains to `sslrootcert`) and `verify-full` (it also
//! names the host). Connections use rustls with the ring provider.

use crate::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it.
    Prefer,
    /// TLS or no connection.
    Require,
    /// TLS with a certificate that chains to `sslrootcert`.
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host.
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's `sslmode` value; `None` for one spate does not know.
    pub fn parse(text: &str) -> Option<Self> {
        let all = [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ];
        all.into_iter().find(|mode| mode.name() == text)
    }

    /// Its name in a URL.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The `sslmode` tokio-postgres is given: it knows `disable`, `prefer` and `require`;
    /// checking the certificate is the connector's part.
    pub fn for_client(self) -> &'static str {
        match self {
            SslMode::VerifyCa | SslMode::VerifyFull => "require",
            other => other.name(),
        }
    }
}

/// How a PostgreSQL sink secures its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The mode.
    pub mode: SslMode,
    /// The CA certificates (PEM) the server's must chain to (`sslrootcert`).
    pub root_cert: Option<PathBuf>,
}

impl Tls {
    /// The rustls connector for this mode: `sslrootcert`'s certificates read and checked.
    pub fn connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
        let provider = Arc::new(ring::default_provider());
        let roots = match &self.root_cert {
            Some(path) => Some(self.roots(path)?),
            None => None,
        };
        let verifier = match roots {
            Some(roots) => Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| self.refused(&e.to_string()))?,
            ),
            None => None,
        };
        let verifier = Arc::new(Verifier {
            webpki: verifier,
            check_name: self.mode == SslMode::VerifyFull,
            provider: provider.clone(),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| self.refused(&e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    /// The certificates of the PEM file at `path`.
    fn roots(&self, path: &std::path::Path) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| {
                self.refused(&format!("cannot read sslrootcert {}: {e}", path.display()))
            })?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            let why = format!("sslrootcert {} holds no certificate", path.display());
            return Err(self.refused(&why));
        }
        Ok(roots)
    }

    fn refused(&self, why: &str) -> Error {
        Error::config("--sink", "sslrootcert", why)
    }
}

/// Checks a server's certificate as the mode says: not at all without a root certificate, its
/// chain to the root with one, and its name too for `verify-full`. Handshake signatures are
/// always checked (they prove the server holds the certificate's key).
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
