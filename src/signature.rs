//! Momento webhook signatures: HMAC-SHA3-256 over the raw request body.
//!
//! The verifier only ever sees bytes, never parsed JSON: re-serialising a parsed body would
//! change whitespace or key order and break (or worse, loosen) the check. This module knows
//! nothing about HTTP or where the secrets come from.

use std::fmt;

use hmac::{KeyInit, Mac, SimpleHmac};
use sha3::Sha3_256;

// `SimpleHmac`: `sha3` 0.12 does not expose the block-level API that `Hmac` needs.
type HmacSha3 = SimpleHmac<Sha3_256>;

/// Length of a hex-encoded HMAC-SHA3-256 tag.
const SIGNATURE_HEX_LEN: usize = 64;

/// One webhook signing secret, already turned into a keyed HMAC state.
///
/// Keying is done once (at start-up or on a secret refresh) and the state is cloned per
/// request. `Debug` never prints the key.
#[derive(Clone)]
pub struct SigningSecret {
    keyed: HmacSha3,
}

impl SigningSecret {
    /// Keys an HMAC with the secret's UTF-8 bytes, exactly as Momento does.
    pub fn new(secret: &str) -> Self {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let keyed = match HmacSha3::new_from_slice(secret.as_bytes()) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        Self { keyed }
    }

    /// The lower-case hex signature Momento would send for `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    fn verifies(&self, body: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.keyed.clone();
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(tag).is_ok()
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret([REDACTED])")
    }
}

/// Every secret currently accepted. Several exist only during a rotation window.
#[derive(Clone, Debug)]
pub struct SecretSet {
    secrets: Vec<SigningSecret>,
}

/// Why a comma-separated secret list was refused. Never carries the secret itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretListError {
    #[error("it holds no secret")]
    Empty,
    #[error("entry {position} is empty (check for a stray comma)")]
    EmptyEntry { position: usize },
    #[error(
        "it holds the stack's placeholder: no signing secret has been stored yet; store the one Momento shows for the webhook with `webhook-ops rotate`"
    )]
    NotStoredYet,
}

/// The key of the placeholder the SAM template stores in a new secret (`{"<key>": "<random>"}`)
/// until the operator stores Momento's: random, so nobody can sign with it, and recognisable, so
/// the function and the tools can say what to do.
pub const PLACEHOLDER_KEY: &str = "signing_secret_not_stored_yet";

/// The secrets in a stored comma-separated list (`secret`, or `new,old` while rotating), white
/// space around each trimmed: the one reading of a secret list, for the function and the tools.
pub fn secret_list(list: &str) -> Result<Vec<&str>, SecretListError> {
    if list.trim().is_empty() {
        return Err(SecretListError::Empty);
    }
    if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(list)
        .is_ok_and(|object| object.contains_key(PLACEHOLDER_KEY))
    {
        return Err(SecretListError::NotStoredYet);
    }
    list.split(',')
        .enumerate()
        .map(|(i, s)| match s.trim() {
            "" => Err(SecretListError::EmptyEntry { position: i + 1 }),
            s => Ok(s),
        })
        .collect()
}

impl SecretSet {
    /// Parses `secret` or `new,old` (surrounding white space is ignored, as it is never part
    /// of a Momento secret but easily pasted along with one).
    pub fn parse(list: &str) -> Result<Self, SecretListError> {
        Ok(Self { secrets: secret_list(list)?.into_iter().map(SigningSecret::new).collect() })
    }

    /// Never zero: `parse` refuses an empty list.
    pub(crate) fn len(&self) -> usize {
        self.secrets.len()
    }

    /// The secret Momento signs with after a rotation is listed first by convention; signing
    /// tools use it.
    pub fn first(&self) -> Option<&SigningSecret> {
        self.secrets.first()
    }
}

/// Why a request's signature was not accepted (worded for clients as the outcome's refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No `momento-signature` header, or an empty one.
    Missing,
    /// Not 64 hexadecimal characters.
    Malformed,
    /// Matches the body under none of the secrets.
    Mismatch,
}

/// Checks `header` (the `momento-signature` value) against the HMAC of `body` under every
/// secret in `secrets`; accepts if any matches.
///
/// Upper-case hex is accepted. Every secret is tried even after a match so the time taken does
/// not reveal which secret (old or new) signed the request.
pub fn verify(secrets: &SecretSet, body: &[u8], header: Option<&[u8]>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let header = header.trim_ascii();
    if header.is_empty() {
        return Err(SignatureError::Missing);
    }
    if header.len() != SIGNATURE_HEX_LEN {
        return Err(SignatureError::Malformed);
    }
    let mut tag = [0u8; SIGNATURE_HEX_LEN / 2];
    hex::decode_to_slice(header, &mut tag).map_err(|_| SignatureError::Malformed)?;

    let matched = secrets.secrets.iter().fold(false, |matched, secret| secret.verifies(body, &tag) | matched);
    if matched { Ok(()) } else { Err(SignatureError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected tags computed independently with Python:
    //   hmac.new(key, body, hashlib.sha3_256).hexdigest()
    const KAT: &[(&str, &[u8], &str)] = &[
        (
            "test-secret",
            b"{\"cache\":\"c\",\"topic\":\"t\"}",
            "f224917e789023a0dfef0c5baf7e8f83ff5cebfca1f0181fca185dd6c4679302",
        ),
        (
            "key",
            b"The quick brown fox jumps over the lazy dog",
            "8c6e0683409427f8931711b10ca92a506eb1fafa48fadd66d76126f47ac2c333",
        ),
        ("", b"", "e841c164e5b4f10c9f3985587962af72fd607a951196fc92fb3a5251941784ea"),
        // Momento's own vector, from the unit test of WebhookUtils.validateWebhookRequest in its
        // Node.js SDK (note the spaces: the bytes are signed, not the JSON).
        (
            "1234567890",
            br#"{"text":"some text", "another_field": "another field" }"#,
            "b43f72787eb66410ff110295b036ef828e5686af21b414ce092f02c05deea3da",
        ),
    ];

    fn set(list: &str) -> SecretSet {
        SecretSet::parse(list).unwrap()
    }

    #[test]
    fn known_answer_vectors_match_python_hmac_sha3_256() {
        for (key, body, expected) in KAT {
            assert_eq!(SigningSecret::new(key).sign(body), *expected, "key {key:?}");
        }
    }

    #[test]
    fn momentos_own_vector_verifies_and_its_invalid_signature_does_not() {
        let (key, body, signature) = KAT[3];
        let secrets = set(key);
        assert_eq!(verify(&secrets, body, Some(signature.as_bytes())), Ok(()));
        assert_eq!(verify(&secrets, body, Some(b"this signature is incorrect")), Err(SignatureError::Malformed));
    }

    #[test]
    fn when_signature_matches_should_accept_lower_and_upper_case_hex() {
        let secrets = set("test-secret");
        let body = KAT[0].1;
        let sig = KAT[0].2;
        assert_eq!(verify(&secrets, body, Some(sig.as_bytes())), Ok(()));
        assert_eq!(verify(&secrets, body, Some(sig.to_uppercase().as_bytes())), Ok(()));
    }

    #[test]
    fn when_header_is_missing_or_blank_should_refuse_as_missing() {
        let secrets = set("s");
        assert_eq!(verify(&secrets, b"{}", None), Err(SignatureError::Missing));
        assert_eq!(verify(&secrets, b"{}", Some(b"  ")), Err(SignatureError::Missing));
    }

    #[test]
    fn when_header_is_not_64_hex_chars_should_refuse_as_malformed() {
        let secrets = set("s");
        let good = SigningSecret::new("s").sign(b"{}");
        for bad in [&good[..63], &format!("{good}0"), &format!("sha256={good}"), &good.replace('a', "g")] {
            if bad == good {
                continue;
            }
            assert_eq!(verify(&secrets, b"{}", Some(bad.as_bytes())), Err(SignatureError::Malformed), "{bad}");
        }
    }

    #[test]
    fn when_body_or_secret_differs_should_refuse_as_mismatch() {
        let sig = SigningSecret::new("s").sign(b"{\"a\":1}");
        assert_eq!(verify(&set("s"), b"{\"a\":2}", Some(sig.as_bytes())), Err(SignatureError::Mismatch));
        assert_eq!(verify(&set("other"), b"{\"a\":1}", Some(sig.as_bytes())), Err(SignatureError::Mismatch));
        // Same JSON, different bytes: the check is over the raw body.
        assert_eq!(verify(&set("s"), b"{ \"a\":1}", Some(sig.as_bytes())), Err(SignatureError::Mismatch));
    }

    #[test]
    fn when_any_of_several_secrets_matches_should_accept() {
        let secrets = set("new-secret, old-secret");
        assert_eq!(secrets.len(), 2);
        for key in ["new-secret", "old-secret"] {
            let sig = SigningSecret::new(key).sign(b"body");
            assert_eq!(verify(&secrets, b"body", Some(sig.as_bytes())), Ok(()), "{key}");
        }
        let sig = SigningSecret::new("retired").sign(b"body");
        assert_eq!(verify(&secrets, b"body", Some(sig.as_bytes())), Err(SignatureError::Mismatch));
    }

    #[test]
    fn the_same_secret_listed_twice_still_verifies() {
        // `rotate` run twice with one value, or a pasted `s,s`: both entries match, and two
        // matches must still be a match.
        let secrets = set("same-secret,same-secret");
        let sig = SigningSecret::new("same-secret").sign(b"body");
        assert_eq!(verify(&secrets, b"body", Some(sig.as_bytes())), Ok(()));
        let secrets = set("a,a,a");
        assert_eq!(verify(&secrets, b"x", Some(SigningSecret::new("a").sign(b"x").as_bytes())), Ok(()));
    }

    #[test]
    fn the_first_secret_of_a_rotation_list_is_the_new_one() {
        let secrets = set("new-secret, old-secret");
        let first = secrets.first().unwrap();
        assert_eq!(first.sign(b"body"), SigningSecret::new("new-secret").sign(b"body"));
    }

    #[test]
    fn the_templates_placeholder_is_no_secret() {
        let placeholder = format!(r#"{{"{PLACEHOLDER_KEY}":"Zx81kq0aPLmN3vB7cD9eF2gH4iJ6kL8m"}}"#);
        assert_eq!(SecretSet::parse(&placeholder).unwrap_err(), SecretListError::NotStoredYet);
        let spaced = format!(r#" {{ "{PLACEHOLDER_KEY}" : "x" }} "#);
        assert_eq!(secret_list(&spaced).unwrap_err(), SecretListError::NotStoredYet);
        assert_eq!(secret_list(r#"{"other":"x"}"#).unwrap(), [r#"{"other":"x"}"#], "only the placeholder's key");
    }

    #[test]
    fn secret_lists_with_empty_entries_are_refused() {
        assert_eq!(SecretSet::parse("").unwrap_err(), SecretListError::Empty);
        assert_eq!(SecretSet::parse(" , ").unwrap_err(), SecretListError::EmptyEntry { position: 1 });
        assert_eq!(SecretSet::parse("a,,b").unwrap_err(), SecretListError::EmptyEntry { position: 2 });
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let printed = format!("{:?}", set("hunter2-very-secret"));
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("REDACTED"));
    }
}
