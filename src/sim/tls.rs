//! The sandbox's TLS: a throwaway CA and a leaf for 127.0.0.1 and localhost signed by it. The leaf
//! is explicitly CA:FALSE (rustls clients refuse a self-signed CA certificate as a server leaf); the
//! CA's PEM is written to a file for clients to trust.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::error::SimError;

/// File name of the CA certificate inside the cert dir.
pub const CA_FILE: &str = "linkguard-sim-ca.pem";

pub(crate) struct TlsSetup {
    pub acceptor: TlsAcceptor,
    pub ca_cert_path: PathBuf,
}

fn tls_err(e: impl std::fmt::Display) -> SimError {
    SimError::Tls(e.to_string())
}

/// Generates the CA and leaf, writes the CA PEM to `dir/linkguard-sim-ca.pem`, and builds the
/// rustls acceptor (HTTP/1.1).
pub(crate) fn setup(dir: &Path) -> Result<TlsSetup, SimError> {
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().map_err(tls_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.distinguished_name = name("linkguard sim CA");
    ca_params.not_before = now - time::Duration::days(1);
    ca_params.not_after = now + time::Duration::days(365);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(tls_err)?;
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(tls_err)?;
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.distinguished_name = name("linkguard sim");
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.not_before = now - time::Duration::days(1);
    leaf_params.not_after = now + time::Duration::days(365);
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).map_err(tls_err)?;

    std::fs::create_dir_all(dir).map_err(|source| SimError::CertDir {
        path: dir.display().to_string(),
        source,
    })?;
    let ca_cert_path = dir.join(CA_FILE);
    std::fs::write(&ca_cert_path, ca_cert.pem()).map_err(|source| SimError::CertDir {
        path: ca_cert_path.display().to_string(),
        source,
    })?;

    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsSetup {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        ca_cert_path,
    })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}
