//! The TLS trust store of every AWS call: Amazon Trust Services' roots, compiled in, plus the
//! certificates of `AWS_CA_BUNDLE` when set (a corporate proxy's CA, for the tools on a
//! workstation or a function behind an inspecting proxy).
//!
//! Compiled in rather than read from the system: the runtime image's certificate layout is then
//! irrelevant, and nothing is read or parsed from disk at cold start (the system store means
//! opening and parsing one file per certificate on Debian-like images).

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Amazon Root CA 1-4 and Starfield Services Root Certificate Authority - G2, in PEM.
pub const AWS_TRUST_ROOTS: &str = include_str!("../certs/aws-trust-roots.pem");

/// The PEM certificates in `pem`, each checked the way the TLS client will use it, so that a bad
/// bundle stops start-up with a clear error instead of failing (or panicking) at the first call.
/// The error names what to fix.
pub fn check_ca_bundle(path: &str, pem: &[u8]) -> Result<(), String> {
    let mut store = RootCertStore::empty();
    let mut count = 0;
    for (i, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let invalid =
            |reason: String| format!("{path}: certificate {} is not a usable CA certificate: {reason}", i + 1);
        let cert = cert.map_err(|e| invalid(e.to_string()))?;
        store.add(cert).map_err(|e| invalid(e.to_string()))?;
        count += 1;
    }
    if count == 0 {
        return Err(format!("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    Ok(())
}

/// The HTTPS client for every SDK client: rustls with aws-lc (the SDK's default provider), trusting
/// the compiled-in AWS roots and `extra_pem` (already checked with [`check_ca_bundle`]).
pub fn https_client(extra_pem: Option<&[u8]>) -> SharedHttpClient {
    let mut trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_TRUST_ROOTS.as_bytes());
    if let Some(pem) = extra_pem {
        trust = trust.with_pem_certificate(pem);
    }
    let context = TlsContext::builder().with_trust_store(trust);
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
    match context.build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // `build` cannot fail today; if it ever does, the SDK's own defaults still verify TLS.
        Err(_) => builder.build_https(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2_free_fingerprint as fingerprint;

    /// SHA-256 of DER, spelled as in certs/aws-trust-roots.pem (computed with aws-lc, which the
    /// TLS stack uses anyway).
    mod sha2_free_fingerprint {
        pub fn of(der: &[u8]) -> String {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
            digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
        }
    }

    #[test]
    fn the_compiled_in_roots_are_exactly_amazon_trust_services_and_their_cross_signer() {
        let fingerprints: Vec<String> = CertificateDer::pem_slice_iter(AWS_TRUST_ROOTS.as_bytes())
            .map(|cert| fingerprint::of(cert.unwrap().as_ref()))
            .collect();
        assert_eq!(
            fingerprints,
            [
                "8E:CD:E6:88:4F:3D:87:B1:12:5B:A3:1A:C3:FC:B1:3D:70:16:DE:7F:57:CC:90:4F:E1:CB:97:C6:AE:98:19:6E",
                "1B:A5:B2:AA:8C:65:40:1A:82:96:01:18:F8:0B:EC:4F:62:30:4D:83:CE:C4:71:3A:19:C3:9C:01:1E:A4:6D:B4",
                "18:CE:6C:FE:7B:F1:4E:60:B2:E3:47:B8:DF:E8:68:CB:31:D0:2E:BB:3A:DA:27:15:69:F5:03:43:B4:6D:B3:A4",
                "E3:5D:28:41:9E:D0:20:25:CF:A6:90:38:CD:62:39:62:45:8D:A5:C6:95:FB:DE:A3:C2:2B:0B:FB:25:89:70:92",
                "56:8D:69:05:A2:C8:87:08:A4:B3:02:51:90:ED:CF:ED:B1:97:4A:60:6A:13:C6:E5:29:0F:CB:2A:E6:3E:DA:B5",
            ]
        );
        for fingerprint in &fingerprints {
            assert!(AWS_TRUST_ROOTS.contains(fingerprint.as_str()), "the file's header lists {fingerprint}");
        }
        assert_eq!(check_ca_bundle("compiled-in", AWS_TRUST_ROOTS.as_bytes()), Ok(()));
    }

    #[test]
    fn an_extra_bundle_must_hold_usable_certificates() {
        let empty = "empty.pem holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
        assert_eq!(check_ca_bundle("empty.pem", b""), Err(empty.to_owned()));
        assert!(check_ca_bundle("text.pem", b"not a certificate").unwrap_err().starts_with("text.pem holds no PEM"));
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let error = check_ca_bundle("bad.pem", garbage).unwrap_err();
        assert!(error.starts_with("bad.pem: certificate 1 is not a usable CA certificate: "), "{error}");
    }
}
