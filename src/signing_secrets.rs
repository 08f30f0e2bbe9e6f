//! Where the signing secrets come from, and the request-time signature check that uses them:
//! fixed secrets from the environment, secrets from AWS Secrets Manager that follow a rotation
//! without a redeploy, or (local experiments only) no check at all.
//!
//! The HMAC itself lives in [`crate::signature`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::signature::{SecretSet, SignatureError, verify};

/// How the receiver checks `momento-signature`.
#[derive(Debug)]
pub enum SignatureCheck {
    /// `ALLOW_UNSIGNED_WEBHOOKS=true`.
    Unsigned,
    Fixed(SecretSet),
    SecretsManager(RefreshingSecrets),
}

/// The verdict on one request's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub result: Result<(), SignatureError>,
    /// A mismatch made this request re-read the secret (the `SecretRefreshed` metric).
    pub secret_refreshed: bool,
}

impl SignatureCheck {
    /// Checks `header` against `body`.
    pub async fn verify(&self, body: &[u8], header: Option<&[u8]>) -> Result<(), SignatureError> {
        self.check(body, header).await.result
    }

    /// [`Self::verify`], also telling whether the secret was re-read for this request.
    pub async fn check(&self, body: &[u8], header: Option<&[u8]>) -> Checked {
        match self {
            Self::Unsigned => Checked { result: Ok(()), secret_refreshed: false },
            Self::Fixed(secrets) => Checked { result: verify(secrets, body, header), secret_refreshed: false },
            Self::SecretsManager(refreshing) => refreshing.check(body, header).await,
        }
    }
}

/// Why the secret could not be read from Secrets Manager. Never carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretFetchError {
    #[error("Secrets Manager did not return the secret ({code}: {message})")]
    Aws { code: String, message: String },
    #[error("the secret has no SecretString (store the signing secret as text)")]
    NotText,
    #[error("the secret's value is not a usable secret list: {0}")]
    Invalid(#[from] crate::signature::SecretListError),
}

struct Cached {
    secrets: Arc<SecretSet>,
    /// Bumped on every refresh attempt, so a waiter can tell that someone else refreshed.
    generation: u64,
    checked_at: Instant,
}

/// Secrets read from Secrets Manager once at start-up, and re-read when a signature matches none
/// of them and the last read is older than `min_refresh_interval`.
///
/// Momento's secret rotation takes effect immediately, so the first event after it carries a
/// signature no cached secret matches; re-reading then lets the function follow within seconds.
/// The interval and a single-flight lock keep forged requests from causing a read per request.
pub struct RefreshingSecrets {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    min_refresh_interval: Duration,
    cached: RwLock<Cached>,
    refresh_lock: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for RefreshingSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshingSecrets")
            .field("secret_id", &self.secret_id)
            .field("min_refresh_interval", &self.min_refresh_interval)
            .finish_non_exhaustive()
    }
}

/// The minimum time between two reads of the secret. It bounds both the Secrets Manager calls a
/// flood of forged requests can cause (one per interval) and, after a rotation, how long events
/// signed with the new secret can be refused if one arrived before the new value was stored.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

impl RefreshingSecrets {
    /// Reads the secret now; start-up fails closed if it cannot.
    pub async fn load(
        client: aws_sdk_secretsmanager::Client,
        secret_id: impl Into<String>,
        min_refresh_interval: Duration,
    ) -> Result<Self, SecretFetchError> {
        let secret_id = secret_id.into();
        let secrets = fetch(&client, &secret_id, Some(startup_timeouts())).await?;
        Ok(Self {
            client,
            secret_id,
            min_refresh_interval,
            cached: RwLock::new(Cached { secrets: Arc::new(secrets), generation: 0, checked_at: Instant::now() }),
            refresh_lock: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(1),
        })
    }

    /// How many times the secret has been read (start-up included). For tests and metrics.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> (Arc<SecretSet>, u64, Instant) {
        let cached = self.cached.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        (Arc::clone(&cached.secrets), cached.generation, cached.checked_at)
    }

    async fn check(&self, body: &[u8], header: Option<&[u8]>) -> Checked {
        let (secrets, generation, _) = self.snapshot();
        match verify(&secrets, body, header) {
            Err(SignatureError::Mismatch) => match self.refreshed_since(generation).await {
                Some((newer, secret_refreshed)) => Checked { result: verify(&newer, body, header), secret_refreshed },
                None => Checked { result: Err(SignatureError::Mismatch), secret_refreshed: false },
            },
            result => Checked { result, secret_refreshed: false },
        }
    }

    /// A secret set newer than `generation`, re-reading Secrets Manager if the last read is old
    /// enough; `None` when there is nothing new to try. The flag says whether this call read it.
    async fn refreshed_since(&self, generation: u64) -> Option<(Arc<SecretSet>, bool)> {
        let _single_flight = self.refresh_lock.lock().await;
        let (secrets, current_generation, checked_at) = self.snapshot();
        if current_generation != generation {
            return Some((secrets, false)); // refreshed by another request while we waited
        }
        if checked_at.elapsed() < self.min_refresh_interval {
            return None;
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = fetch(&self.client, &self.secret_id, None).await;
        let mut cached = self.cached.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        cached.generation += 1;
        cached.checked_at = Instant::now();
        match fetched {
            Ok(newer) => {
                tracing::info!(secret_id = %self.secret_id, secrets = newer.len(), "re-read the signing secret after a signature mismatch");
                cached.secrets = Arc::new(newer);
                Some((Arc::clone(&cached.secrets), true))
            }
            Err(error) => {
                // Keep the old secrets: a Secrets Manager outage must not reject good events.
                tracing::warn!(secret_id = %self.secret_id, %error, "could not re-read the signing secret; keeping the cached one");
                None
            }
        }
    }
}

/// The start-up read happens in Lambda's init phase, before any event waits on it, so it may take
/// longer than a refresh in the request path (bounded by the client's own, tighter timeouts).
fn startup_timeouts() -> aws_sdk_secretsmanager::config::timeout::TimeoutConfig {
    aws_sdk_secretsmanager::config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

async fn fetch(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    timeouts: Option<aws_sdk_secretsmanager::config::timeout::TimeoutConfig>,
) -> Result<SecretSet, SecretFetchError> {
    let mut request = client.get_secret_value().secret_id(secret_id).customize();
    if let Some(timeouts) = timeouts {
        request = request.config_override(aws_sdk_secretsmanager::config::Builder::new().timeout_config(timeouts));
    }
    let output = request.send().await.map_err(|e| {
        let e = crate::forward::ForwardError::from_sdk(&e);
        SecretFetchError::Aws { code: e.code, message: e.message }
    })?;
    let text = output.secret_string().ok_or(SecretFetchError::NotText)?;
    Ok(SecretSet::parse(text)?)
}
