//! HTTPS for `dpx serve`: a rustls acceptor from a PEM certificate chain and
//! private key (`--tls-cert`, `--tls-key`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error(
        "{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----): pass the server certificate chain with --tls-cert"
    )]
    NoCertificate { path: PathBuf },
    /// Never quotes the file: it is a private key.
    #[error(
        "cannot read the TLS private key {path}: {reason} (a PEM PKCS#8, PKCS#1 or SEC1 key is needed)"
    )]
    Key { path: PathBuf, reason: String },
    #[error("the TLS certificate and key cannot be used together: {0}")]
    Config(#[from] rustls::Error),
    /// A private key others may read is refused, as dpx's other secrets are.
    #[error(transparent)]
    Exposed(#[from] crate::operator_files::Exposed),
}

/// Loads the certificate chain and key; offers HTTP/2 and HTTP/1.1 (ALPN).
/// Blocking: reads files (each capped, see `operator_files`).
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let cert_pem = crate::operator_files::read(cert).map_err(|e| TlsError::Certificate {
        path: cert.into(),
        reason: e.to_string(),
    })?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate {
            path: cert.into(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: cert.into() });
    }
    let key_pem = read_key(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Key {
        path: key.into(),
        reason: describe_pem_error(&e),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The key file's bytes: only its owner may read it, and it is capped.
fn read_key(key: &Path) -> Result<Vec<u8>, TlsError> {
    let io_error = |e: std::io::Error| TlsError::Key {
        path: key.into(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(key).map_err(io_error)?;
    crate::operator_files::check_private(key, &file).map_err(io_error)??;
    crate::operator_files::read_from(file).map_err(io_error)
}

/// What went wrong reading a key, without any of its bytes.
fn describe_pem_error(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::NoItemsFound => "no private key in it".into(),
        Error::Io(io) => io.to_string(),
        _ => "not a valid PEM file".into(),
    }
}
