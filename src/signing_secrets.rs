//! Where the signing secrets come from, and the request-time signature check that uses them:
//! fixed secrets from the environment, secrets from AWS Secrets Manager that follow a rotation
//! without a redeploy, or (local experiments only) no check at all.
//!
//! The HMAC itself lives in [`crate::signature`]; the intervals in [`crate::bounds`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;

use crate::bounds::{SECRET_MIN_READ_INTERVAL, SECRET_REFRESH_AFTER, SECRET_TRUSTED_FOR, STARTUP_SECRET_BUDGET};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Authentic,
    Refused(SignatureError),
    /// No secret may be trusted now (see [`RefreshingSecrets`]): nothing can be checked.
    SecretUnavailable,
}

impl From<Result<(), SignatureError>> for Verdict {
    fn from(result: Result<(), SignatureError>) -> Self {
        match result {
            Ok(()) => Self::Authentic,
            Err(error) => Self::Refused(error),
        }
    }
}

/// A [`Verdict`], and whether this request read the secret from Secrets Manager (the
/// `SecretRefreshed` metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub verdict: Verdict,
    pub secret_refreshed: bool,
}

impl SignatureCheck {
    /// Checks `header` against `body`, also telling whether the secret was read for this request.
    pub async fn check(&self, body: &[u8], header: Option<&[u8]>) -> Checked {
        match self {
            Self::Unsigned => Checked { verdict: Verdict::Authentic, secret_refreshed: false },
            Self::Fixed(secrets) => Checked { verdict: verify(secrets, body, header).into(), secret_refreshed: false },
            Self::SecretsManager(refreshing) => refreshing.check(body, header).await,
        }
    }
}

/// Why the secret could not be read from Secrets Manager. Never carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretFetchError {
    #[error("Secrets Manager did not return the secret ({0})")]
    Remote(crate::remote_error::RemoteError),
    #[error("the secret has no SecretString (store the signing secret as text)")]
    NotText,
    #[error("the secret's value is not a usable secret list: {0}")]
    Invalid(#[from] crate::signature::SecretListError),
}

/// When the secret is read again. [`Default`] is the production policy of [`crate::bounds`];
/// tests shorten it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// At most one read per instance this often, whatever asks for it.
    pub min_read_interval: Duration,
    /// A request finding the cache older than this reads the secret first.
    pub refresh_after: Duration,
    /// Never trust a cache older than this: answer "secret unavailable" instead.
    pub trusted_for: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            min_read_interval: SECRET_MIN_READ_INTERVAL,
            refresh_after: SECRET_REFRESH_AFTER,
            trusted_for: SECRET_TRUSTED_FOR,
        }
    }
}

struct Cache {
    secrets: Arc<SecretSet>,
    /// The last successful read.
    read_at: Instant,
    /// The last attempt, successful or not.
    tried_at: Instant,
}

/// Secrets read from Secrets Manager at start-up, then kept fresh by the requests themselves (a
/// Lambda instance is frozen between requests, so nothing can run in the background):
///
/// - a request that finds the cache older than `refresh_after` reads the secret first, so a
///   secret removed from Secrets Manager stops being accepted;
/// - a signature that matches no cached secret reads it too, so a new secret stored after a
///   rotation in Momento is followed within seconds;
/// - at most one read per `min_read_interval`, so a flood of forged requests costs little;
/// - when the secret cannot be read, the cached one stays in use until `trusted_for` after the
///   last successful read, and nothing is accepted after that (fail closed).
///
/// The cache is behind one async lock, held across a read: requests that arrive during a read
/// wait for it and use its result (on Lambda an instance has one request at a time anyway).
pub struct RefreshingSecrets {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    policy: RefreshPolicy,
    cache: tokio::sync::Mutex<Cache>,
}

impl std::fmt::Debug for RefreshingSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshingSecrets")
            .field("secret_id", &self.secret_id)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RefreshingSecrets {
    /// Reads the secret now, within the start-up budget; start-up fails closed if it cannot.
    pub async fn load(
        client: aws_sdk_secretsmanager::Client,
        secret_id: impl Into<String>,
        policy: RefreshPolicy,
    ) -> Result<Self, SecretFetchError> {
        let secret_id = secret_id.into();
        let secrets = fetch(&client, &secret_id, true).await?;
        let now = Instant::now();
        let cache = Cache { secrets: Arc::new(secrets), read_at: now, tried_at: now };
        Ok(Self { client, secret_id, policy, cache: tokio::sync::Mutex::new(cache) })
    }

    async fn check(&self, body: &[u8], header: Option<&[u8]>) -> Checked {
        let (secrets, mut refreshed) = {
            let mut cache = self.cache.lock().await;
            let refreshed = cache.read_at.elapsed() >= self.policy.refresh_after && self.read(&mut cache).await;
            if cache.read_at.elapsed() > self.policy.trusted_for {
                return Checked { verdict: Verdict::SecretUnavailable, secret_refreshed: refreshed };
            }
            (Arc::clone(&cache.secrets), refreshed)
        };
        let verdict = match verify(&secrets, body, header) {
            Err(SignatureError::Mismatch) => {
                let mut cache = self.cache.lock().await;
                // Another request may have read a newer secret meanwhile; if not, try a read.
                if Arc::ptr_eq(&cache.secrets, &secrets) {
                    refreshed |= self.read(&mut cache).await;
                }
                match Arc::ptr_eq(&cache.secrets, &secrets) {
                    true => Verdict::Refused(SignatureError::Mismatch),
                    false => verify(&cache.secrets, body, header).into(),
                }
            }
            result => result.into(),
        };
        Checked { verdict, secret_refreshed: refreshed }
    }

    /// Reads the secret into `cache` unless the last attempt is too recent; `true` when a value
    /// was read. A failed read keeps the cached secrets (until they may no longer be trusted).
    async fn read(&self, cache: &mut Cache) -> bool {
        if cache.tried_at.elapsed() < self.policy.min_read_interval {
            return false;
        }
        cache.tried_at = Instant::now();
        match fetch(&self.client, &self.secret_id, false).await {
            Ok(secrets) => {
                tracing::debug!(secret_id = %self.secret_id, secrets = secrets.len(), "read the signing secret");
                cache.secrets = Arc::new(secrets);
                cache.read_at = Instant::now();
                true
            }
            Err(error) => {
                let trusted_for = self.policy.trusted_for.saturating_sub(cache.read_at.elapsed());
                tracing::warn!(
                    secret_id = %self.secret_id,
                    %error,
                    "could not read the signing secret; the cached one is trusted for {} s more",
                    trusted_for.as_secs()
                );
                false
            }
        }
    }
}

/// The start-up read has the whole [`STARTUP_SECRET_BUDGET`], even for a single attempt: a slow
/// first answer on a cold connection is worth waiting for, as nothing else is waiting yet. Later
/// reads have the client's own, tighter timeouts.
async fn fetch(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    at_startup: bool,
) -> Result<SecretSet, SecretFetchError> {
    let mut request = client.get_secret_value().secret_id(secret_id).customize();
    if at_startup {
        let timeouts = TimeoutConfig::builder()
            .operation_attempt_timeout(STARTUP_SECRET_BUDGET)
            .operation_timeout(STARTUP_SECRET_BUDGET)
            .build();
        request = request.config_override(aws_sdk_secretsmanager::config::Builder::new().timeout_config(timeouts));
    }
    let output =
        request.send().await.map_err(|e| SecretFetchError::Remote(crate::remote_error::RemoteError::from_sdk(&e)))?;
    let text = output.secret_string().ok_or(SecretFetchError::NotText)?;
    Ok(SecretSet::parse(text)?)
}
