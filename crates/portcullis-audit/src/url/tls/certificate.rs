//! The certificate chain the server shows, read whatever it is (trust is
//! judged by the audit's client, which refuses what browsers refuse).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// What one modern handshake showed.
pub struct Shown {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
}

/// Accepts any certificate, keeping the chain: this handshake only looks.
#[derive(Debug)]
struct Recorder {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut chain) = self.chain.lock() {
            *chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// A rustls handshake with `address` (as `host`), keeping what it showed;
/// `None` when none completed.
pub async fn show(address: &str, host: &str, timeout: Duration) -> Option<Shown> {
    let (_, recorder) = connect_recording(address, host, timeout).await?;
    Some(Shown {
        chain: recorder.chain.lock().map(|c| c.clone()).unwrap_or_default(),
    })
}

/// A TLS connection to `address` that accepts any certificate: for the
/// probes that only look at how the server treats a connection.
pub async fn connect(address: &str, host: &str, timeout: Duration) -> Option<TlsStream<TcpStream>> {
    connect_recording(address, host, timeout)
        .await
        .map(|(stream, _)| stream)
}

async fn connect_recording(
    address: &str,
    host: &str,
    timeout: Duration,
) -> Option<(TlsStream<TcpStream>, Arc<Recorder>)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder = Arc::new(Recorder {
        chain: Mutex::new(Vec::new()),
        schemes: provider.signature_verification_algorithms.supported_schemes(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned()).ok()?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = async {
        let tcp = TcpStream::connect(address).await.ok()?;
        connector.connect(name, tcp).await.ok()
    };
    let stream = tokio::time::timeout(timeout, handshake).await.ok()??;
    Some((stream, recorder))
}

/// What the leaf says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub subject: String,
    /// Seconds until it expires (negative once it has).
    pub expires_in: i64,
    /// `RSA`, `EC` or another algorithm, and its size in bits.
    pub key: (&'static str, usize),
    /// Signed with SHA-1 or MD5.
    pub weak_signature: bool,
}

pub fn leaf(der: &[u8], now: i64) -> Option<Leaf> {
    use x509_parser::prelude::*;
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    let key = match certificate.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => ("RSA", rsa.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(ec)) => ("EC", ec.key_size()),
        Ok(other) => ("other", other.key_size()),
        Err(_) => ("unknown", 0),
    };
    let algorithm = certificate.signature_algorithm.algorithm.to_id_string();
    let weak_signature = [
        "1.2.840.113549.1.1.4", // md5WithRSAEncryption
        "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
        "1.2.840.10045.4.1",    // ecdsa-with-SHA1
        "1.2.840.10040.4.3",    // dsa-with-sha1
    ]
    .contains(&algorithm.as_str());
    Some(Leaf {
        subject: certificate.subject().to_string(),
        expires_in: certificate.validity().not_after.timestamp() - now,
        key,
        weak_signature,
    })
}
