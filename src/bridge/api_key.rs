//! Momento API keys as Momento issues them, read as Momento's SDKs read them
//! (`momento` 0.70, `credential_provider.rs`, and its earlier releases for legacy tokens):
//!
//! - a **v2 API key**: a JWT whose claims say `"t": "g"`. It names no endpoint: the region's
//!   endpoint is configured beside it (`MOMENTO_ENDPOINT`);
//! - a **v1 API key**: URL-safe base64 of `{"endpoint": "<region's endpoint>", "api_key": "<token>"}`;
//!   the token inside is what is sent;
//! - a **legacy auth token**: a JWT whose claims name the cache endpoint (`"c"`, and the control
//!   endpoint `"cp"`); sent as it is.
//!
//! The claims are read, not verified: Momento verifies the key; here it only says where to send
//! it, and that place is checked to be Momento's ([`super::config::parse_endpoint`]).

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde::Deserialize;

use crate::remote_error::RemoteError;

/// A key, ready to send: the token Momento expects in `authorization`, and the region's endpoint
/// when the key names it.
#[derive(Clone, PartialEq, Eq)]
pub struct MomentoKey {
    token: String,
    endpoint: Option<String>,
}

impl std::fmt::Debug for MomentoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MomentoKey").field("token", &"[REDACTED]").field("endpoint", &self.endpoint).finish()
    }
}

#[derive(Deserialize)]
struct V1Key {
    api_key: String,
    endpoint: String,
}

#[derive(Deserialize)]
struct Claims {
    /// `"g"` in a v2 API key.
    t: Option<String>,
    /// A legacy token's cache endpoint.
    c: Option<String>,
}

fn invalid(why: &str) -> RemoteError {
    RemoteError::new("InvalidApiKey", format!("the Momento API key is {why} (the key itself is not shown)"))
}

impl MomentoKey {
    /// Reads `text` (a secret's value, surrounding white space ignored).
    pub fn parse(text: &str) -> Result<Self, RemoteError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        // Only a v1 key is base64 as a whole; a JWT's dots are not base64.
        if let Ok(bytes) = URL_SAFE.decode(text) {
            let key: V1Key = serde_json::from_slice(&bytes)
                .map_err(|_| invalid("base64, but not a v1 key ({\"endpoint\", \"api_key\"})"))?;
            if key.api_key.trim().is_empty() || key.endpoint.trim().is_empty() {
                return Err(invalid("a v1 key with an empty api_key or endpoint"));
            }
            return Ok(Self { token: key.api_key.trim().to_owned(), endpoint: Some(key.endpoint.trim().to_owned()) });
        }
        let claims = match text.split('.').collect::<Vec<_>>().as_slice() {
            [_, claims, _] => URL_SAFE_NO_PAD
                .decode(claims.trim_end_matches('='))
                .ok()
                .and_then(|claims| serde_json::from_slice::<Claims>(&claims).ok()),
            _ => None,
        };
        match claims {
            Some(Claims { t: Some(t), .. }) if t == "g" => Ok(Self { token: text.to_owned(), endpoint: None }),
            Some(Claims { c: Some(cache), .. }) if !cache.trim().is_empty() => {
                let cache = cache.trim();
                let endpoint = cache.strip_prefix("cache.").unwrap_or(cache).to_owned();
                Ok(Self { token: text.to_owned(), endpoint: Some(endpoint) })
            }
            Some(_) => Err(invalid("a JWT that is neither a v2 API key (\"t\": \"g\") nor a legacy token (\"c\")")),
            None => Err(invalid("neither a v2 API key, a v1 API key nor a legacy token")),
        }
    }

    /// What is sent in `authorization`.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The region's endpoint: the one configured (an override, or what a v2 key needs), else the
    /// one the key names.
    pub fn endpoint(&self, configured: Option<&str>) -> Result<String, RemoteError> {
        match (configured, &self.endpoint) {
            (Some(configured), _) => Ok(configured.to_owned()),
            (None, Some(named)) => Ok(named.clone()),
            (None, None) => Err(RemoteError::new(
                "MissingEndpoint",
                "the Momento API key is a v2 key, which names no endpoint: set MOMENTO_ENDPOINT (the template's \
                 MomentoEndpoint) to the region's endpoint, e.g. cell-4-us-west-2-1.prod.a.momentohq.com",
            )),
        }
    }

    /// The endpoint the key names, if any.
    pub fn named_endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }
}
