//! The function's configuration: read from the environment once per cold start and checked
//! before the first request, so a mistake stops start-up with an error naming the variable
//! instead of failing (or, worse, accepting) events later.
//!
//! AWS SDK settings (`AWS_REGION`, `AWS_ENDPOINT_URL*`, credentials) are not read here; the SDK
//! reads them itself.

use crate::bounds::DEFAULT_MAX_EVENT_AGE;
use crate::routing::{RoutingTable, Target};
use crate::signature::{SecretListError, SecretSet};

pub const MOMENTO_SIGNING_SECRET: &str = "MOMENTO_SIGNING_SECRET";
pub const MOMENTO_SIGNING_SECRET_ID: &str = "MOMENTO_SIGNING_SECRET_ID";
pub const ALLOW_UNSIGNED_WEBHOOKS: &str = "ALLOW_UNSIGNED_WEBHOOKS";
pub const MAX_EVENT_AGE_SECONDS: &str = "MAX_EVENT_AGE_SECONDS";
pub const EVENT_BUS_NAME: &str = "EVENT_BUS_NAME";
pub const EVENT_SOURCE: &str = "EVENT_SOURCE";
pub const ROUTES: &str = "ROUTES";
pub const DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";
pub const METRICS_ENABLED: &str = "METRICS_ENABLED";
pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
pub const METRICS_CACHE_TOPIC_DIMENSIONS: &str = "METRICS_CACHE_TOPIC_DIMENSIONS";
/// A PEM file of CA certificates to trust besides the compiled-in AWS roots (the name the AWS
/// CLI and other SDKs use for the same purpose).
pub const AWS_CA_BUNDLE: &str = "AWS_CA_BUNDLE";
/// Set by Lambda; the `FunctionName` dimension of every metric.
pub const AWS_LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";

const DEFAULT_EVENT_BUS_NAME: &str = "default";
const DEFAULT_EVENT_SOURCE: &str = "Momento";
/// EventBridge's limit on `Source`.
const MAX_EVENT_SOURCE_LEN: usize = 256;
/// CloudWatch's limit on a namespace.
const MAX_NAMESPACE_LEN: usize = 255;
/// The `FunctionName` dimension outside Lambda (`cargo lambda watch` sets the variable itself).
const DEFAULT_FUNCTION_NAME: &str = "momento-webhook";

/// Everything the receiver needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub signing: Signing,
    /// `None`: freshness check off.
    pub max_event_age_ms: Option<u64>,
    pub delivery: DeliveryConfig,
    pub dead_letter_queue_url: Option<String>,
    /// `None`: `METRICS_ENABLED=false`, no metrics at all.
    pub metrics: Option<MetricsConfig>,
    /// The certificates of `AWS_CA_BUNDLE`, checked.
    pub extra_ca_certificates: Option<Vec<u8>>,
}

/// Where the CloudWatch metrics go and how finely they are split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub namespace: String,
    pub function_name: String,
    /// `Cache` and `Topic` dimensions: one billed custom metric per distinct pair, so off unless
    /// the operator knows the names are few.
    pub cache_topic_dimensions: bool,
}

/// How request signatures are checked.
#[derive(Debug, Clone)]
pub enum Signing {
    /// Secrets given directly in `MOMENTO_SIGNING_SECRET` (local use).
    Secrets(SecretSet),
    /// Secrets read from AWS Secrets Manager (`MOMENTO_SIGNING_SECRET_ID`) at start-up.
    SecretsManager { secret_id: String },
    /// `ALLOW_UNSIGNED_WEBHOOKS=true`: no check at all. Local experiments only.
    Unsigned,
}

/// What routing and forwarding need; shared by the function and the operator's tools.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub event_source: String,
    pub routes: RoutingTable,
}

/// A configuration mistake. The message names the variable and never repeats a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{variable} is not set: {hint}")]
    Missing { variable: &'static str, hint: &'static str },
    #[error("{variable} is invalid: {reason}")]
    Invalid { variable: &'static str, reason: String },
    #[error("{first} and {second} are both set: {hint}")]
    Conflict { first: &'static str, second: &'static str, hint: &'static str },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`; tests pass a map.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let signing = signing(&lookup)?;
        let max_event_age_ms = match non_empty(&lookup, MAX_EVENT_AGE_SECONDS) {
            None => Some(DEFAULT_MAX_EVENT_AGE.as_millis() as u64),
            Some(raw) => match raw.parse::<u64>() {
                Ok(0) => None,
                Ok(seconds) => Some(seconds.saturating_mul(1000)),
                Err(_) => {
                    return Err(ConfigError::Invalid {
                        variable: MAX_EVENT_AGE_SECONDS,
                        reason: format!("{raw:?} is not a whole number of seconds (use 0 to turn the check off)"),
                    });
                }
            },
        };
        Ok(Self {
            signing,
            max_event_age_ms,
            delivery: DeliveryConfig::from_lookup(&lookup)?,
            dead_letter_queue_url: dead_letter_queue_url(&lookup)?,
            metrics: MetricsConfig::if_enabled(&lookup)?,
            extra_ca_certificates: extra_ca_certificates(&lookup)?,
        })
    }
}

/// `DEAD_LETTER_QUEUE_URL`, if set.
pub fn dead_letter_queue_url(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
    let dead_letter_queue_url = non_empty(lookup, DEAD_LETTER_QUEUE_URL);
    if let Some(url) = &dead_letter_queue_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(ConfigError::Invalid {
            variable: DEAD_LETTER_QUEUE_URL,
            reason: format!("{url:?} is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)"),
        });
    }
    Ok(dead_letter_queue_url)
}

impl MetricsConfig {
    /// `None` when `METRICS_ENABLED=false`.
    pub fn if_enabled(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        match flag_or(lookup, METRICS_ENABLED, true)? {
            true => Self::from_lookup(lookup).map(Some),
            false => Ok(None),
        }
    }

    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let namespace =
            non_empty(lookup, METRICS_NAMESPACE).unwrap_or_else(|| crate::metrics::DEFAULT_NAMESPACE.to_owned());
        let allowed = |c: char| c.is_ascii_alphanumeric() || " .-_/#:".contains(c);
        if namespace.len() > MAX_NAMESPACE_LEN || !namespace.chars().all(allowed) || namespace.starts_with("AWS/") {
            return Err(ConfigError::Invalid {
                variable: METRICS_NAMESPACE,
                reason: format!(
                    "{namespace:?} must be at most {MAX_NAMESPACE_LEN} characters of letters, digits and . - _ / # : or space, and must not start with \"AWS/\""
                ),
            });
        }
        Ok(Self {
            namespace,
            function_name: non_empty(lookup, AWS_LAMBDA_FUNCTION_NAME)
                .unwrap_or_else(|| DEFAULT_FUNCTION_NAME.to_owned()),
            cache_topic_dimensions: flag(lookup, METRICS_CACHE_TOPIC_DIMENSIONS)?,
        })
    }
}

impl DeliveryConfig {
    /// Reads the routing settings through `lookup`: the function's own environment, or (in the
    /// operator's tools) the deployed function's configuration as Lambda reports it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let event_source = non_empty(&lookup, EVENT_SOURCE).unwrap_or_else(|| DEFAULT_EVENT_SOURCE.to_owned());
        if event_source.len() > MAX_EVENT_SOURCE_LEN || event_source.starts_with("aws.") {
            return Err(ConfigError::Invalid {
                variable: EVENT_SOURCE,
                reason: format!(
                    "{event_source:?} must be at most {MAX_EVENT_SOURCE_LEN} characters and must not start with \"aws.\" (reserved for AWS services)"
                ),
            });
        }
        let event_bus = non_empty(&lookup, EVENT_BUS_NAME).unwrap_or_else(|| DEFAULT_EVENT_BUS_NAME.to_owned());
        let routes = match non_empty(&lookup, ROUTES) {
            None => RoutingTable::single(Target::EventBus(event_bus)),
            Some(json) => {
                RoutingTable::parse(&json).map_err(|reason| ConfigError::Invalid { variable: ROUTES, reason })?
            }
        };
        Ok(Self { event_source, routes })
    }
}

/// The PEM file `AWS_CA_BUNDLE` names, read and checked now, so that a bad bundle stops start-up
/// naming the variable rather than failing at the first call.
pub fn extra_ca_certificates(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(path) = non_empty(lookup, AWS_CA_BUNDLE) else {
        return Ok(None);
    };
    let invalid = |reason: String| ConfigError::Invalid { variable: AWS_CA_BUNDLE, reason };
    let pem = std::fs::read(&path).map_err(|e| invalid(format!("{path}: {e}")))?;
    crate::tls::check_ca_bundle(&path, &pem).map_err(invalid)?;
    Ok(Some(pem))
}

/// `true` or `false` (any case); unset or empty is `false`.
fn flag(lookup: &impl Fn(&str) -> Option<String>, variable: &'static str) -> Result<bool, ConfigError> {
    flag_or(lookup, variable, false)
}

/// `true` or `false` (any case); unset or empty is `default`.
fn flag_or(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match non_empty(lookup, variable).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ConfigError::Invalid { variable, reason: "must be \"true\" or \"false\"".to_owned() }),
    }
}

fn signing(lookup: &impl Fn(&str) -> Option<String>) -> Result<Signing, ConfigError> {
    let allow_unsigned = flag(lookup, ALLOW_UNSIGNED_WEBHOOKS)?;
    let secret = lookup(MOMENTO_SIGNING_SECRET).filter(|s| !s.is_empty());
    let secret_id = non_empty(lookup, MOMENTO_SIGNING_SECRET_ID);
    match (secret, secret_id, allow_unsigned) {
        (Some(_), Some(_), _) => Err(ConfigError::Conflict {
            first: MOMENTO_SIGNING_SECRET,
            second: MOMENTO_SIGNING_SECRET_ID,
            hint: "set only one source for the signing secret",
        }),
        (Some(_), None, true) | (None, Some(_), true) => Err(ConfigError::Conflict {
            first: ALLOW_UNSIGNED_WEBHOOKS,
            second: if lookup(MOMENTO_SIGNING_SECRET).is_some() {
                MOMENTO_SIGNING_SECRET
            } else {
                MOMENTO_SIGNING_SECRET_ID
            },
            hint: "a signing secret is configured, so do not also turn signature checks off",
        }),
        (Some(list), None, false) => SecretSet::parse(&list).map(Signing::Secrets).map_err(|e: SecretListError| {
            ConfigError::Invalid { variable: MOMENTO_SIGNING_SECRET, reason: e.to_string() }
        }),
        (None, Some(secret_id), false) => Ok(Signing::SecretsManager { secret_id }),
        (None, None, true) => Ok(Signing::Unsigned),
        (None, None, false) => Err(ConfigError::Missing {
            variable: MOMENTO_SIGNING_SECRET,
            hint: "set it to the webhook's signing secret (or MOMENTO_SIGNING_SECRET_ID to a Secrets Manager secret); \
                   refusing to start without one. For local experiments only, ALLOW_UNSIGNED_WEBHOOKS=true skips the check",
        }),
    }
}

pub(crate) fn non_empty(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_secret_is_set() {
        let c = config(&[(MOMENTO_SIGNING_SECRET, "s")]).unwrap();
        assert!(matches!(c.signing, Signing::Secrets(ref s) if s.len() == 1));
        assert_eq!(c.max_event_age_ms, Some(60_000));
        assert_eq!(c.delivery.event_source, "Momento");
        assert_eq!(c.delivery.routes, RoutingTable::single(Target::EventBus("default".into())));
        assert_eq!(c.dead_letter_queue_url, None);
        assert_eq!(
            c.metrics,
            Some(MetricsConfig {
                namespace: "MomentoWebhooks".into(),
                function_name: "momento-webhook".into(),
                cache_topic_dimensions: false
            })
        );
    }

    #[test]
    fn metrics_settings_are_read_and_checked() {
        let c = config(&[
            (MOMENTO_SIGNING_SECRET, "s"),
            (METRICS_NAMESPACE, "Team/Webhooks"),
            (METRICS_CACHE_TOPIC_DIMENSIONS, "TRUE"),
            (AWS_LAMBDA_FUNCTION_NAME, "stack-WebhookFunction-abc"),
        ])
        .unwrap();
        assert_eq!(
            c.metrics,
            Some(MetricsConfig {
                namespace: "Team/Webhooks".into(),
                function_name: "stack-WebhookFunction-abc".into(),
                cache_topic_dimensions: true
            })
        );
        let off = config(&[(MOMENTO_SIGNING_SECRET, "s"), (METRICS_ENABLED, "false"), (METRICS_NAMESPACE, "AWS/x")]);
        assert_eq!(off.unwrap().metrics, None, "nothing else about metrics is read when they are off");
        for (variable, bad) in [
            (METRICS_NAMESPACE, "AWS/Lambda"),
            (METRICS_NAMESPACE, "has\"quote"),
            (METRICS_NAMESPACE, &"n".repeat(256)),
            (METRICS_CACHE_TOPIC_DIMENSIONS, "yes"),
            (METRICS_ENABLED, "no"),
        ] {
            let err = config(&[(MOMENTO_SIGNING_SECRET, "s"), (variable, bad)]).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{variable} is invalid")), "{bad}: {err}");
        }
        let ok = config(&[(MOMENTO_SIGNING_SECRET, "s"), (METRICS_NAMESPACE, &"n".repeat(255))]);
        assert!(ok.is_ok(), "255 characters is CloudWatch's limit");
    }

    #[test]
    fn without_a_secret_start_up_is_refused_naming_the_variable() {
        let err = config(&[]).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { variable: MOMENTO_SIGNING_SECRET, .. }));
        assert!(err.to_string().starts_with("MOMENTO_SIGNING_SECRET is not set"), "{err}");
        assert!(config(&[(MOMENTO_SIGNING_SECRET, "")]).is_err());
        assert!(config(&[(ALLOW_UNSIGNED_WEBHOOKS, "false")]).is_err());
    }

    #[test]
    fn unsigned_mode_needs_an_explicit_true_and_no_secret() {
        assert!(matches!(config(&[(ALLOW_UNSIGNED_WEBHOOKS, "TRUE")]).unwrap().signing, Signing::Unsigned));
        let err = config(&[(ALLOW_UNSIGNED_WEBHOOKS, "yes")]).unwrap_err();
        assert!(err.to_string().contains(ALLOW_UNSIGNED_WEBHOOKS), "{err}");
        let err = config(&[(ALLOW_UNSIGNED_WEBHOOKS, "true"), (MOMENTO_SIGNING_SECRET, "s")]).unwrap_err();
        assert!(matches!(err, ConfigError::Conflict { .. }), "{err}");
    }

    #[test]
    fn secret_rotation_lists_are_accepted_and_bad_lists_never_echo_the_secret() {
        let c = config(&[(MOMENTO_SIGNING_SECRET, "new-one,old-one")]).unwrap();
        assert!(matches!(c.signing, Signing::Secrets(ref s) if s.len() == 2));
        let err = config(&[(MOMENTO_SIGNING_SECRET, "topsecret,,")]).unwrap_err().to_string();
        assert!(err.contains(MOMENTO_SIGNING_SECRET) && !err.contains("topsecret"), "{err}");
    }

    #[test]
    fn secrets_manager_id_is_an_alternative_to_the_plain_secret() {
        let c = config(&[(MOMENTO_SIGNING_SECRET_ID, "arn:aws:secretsmanager:us-east-1:1:secret:x")]).unwrap();
        assert!(matches!(c.signing, Signing::SecretsManager { .. }));
        let err = config(&[(MOMENTO_SIGNING_SECRET_ID, "x"), (MOMENTO_SIGNING_SECRET, "s")]).unwrap_err();
        assert!(matches!(err, ConfigError::Conflict { .. }));
    }

    #[test]
    fn max_event_age_accepts_whole_seconds_and_zero_turns_it_off() {
        let age =
            |v: &str| config(&[(MOMENTO_SIGNING_SECRET, "s"), (MAX_EVENT_AGE_SECONDS, v)]).map(|c| c.max_event_age_ms);
        assert_eq!(age("300"), Ok(Some(300_000)));
        assert_eq!(age("0"), Ok(None));
        assert_eq!(age(&u64::MAX.to_string()), Ok(Some(u64::MAX)), "saturates, never overflows");
        for bad in ["abc", "-1", "1.5", "60s"] {
            let err = age(bad).unwrap_err().to_string();
            assert!(err.starts_with("MAX_EVENT_AGE_SECONDS is invalid"), "{bad}: {err}");
        }
    }

    #[test]
    fn bus_and_source_are_configurable_and_checked() {
        let c = config(&[(MOMENTO_SIGNING_SECRET, "s"), (EVENT_BUS_NAME, "chat"), (EVENT_SOURCE, "my.app")]).unwrap();
        assert_eq!(c.delivery.routes.route("a", "b"), Some(&Target::EventBus("chat".into())));
        assert_eq!(c.delivery.event_source, "my.app");
        let err = config(&[(MOMENTO_SIGNING_SECRET, "s"), (EVENT_SOURCE, "aws.events")]).unwrap_err();
        assert!(err.to_string().starts_with(EVENT_SOURCE), "{err}");
    }

    #[test]
    fn routes_errors_name_the_variable_and_the_route() {
        let err = config(&[(MOMENTO_SIGNING_SECRET, "s"), (ROUTES, r#"[{"target": {}}]"#)]).unwrap_err().to_string();
        assert!(err.starts_with("ROUTES is invalid: route 1:"), "{err}");
    }

    #[test]
    fn an_extra_ca_bundle_is_read_and_checked_at_start_up() {
        let dir = std::env::temp_dir().join(format!("ca-bundle-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.pem");
        std::fs::write(&good, crate::tls::AWS_TRUST_ROOTS).unwrap();
        let c = config(&[(MOMENTO_SIGNING_SECRET, "s"), (AWS_CA_BUNDLE, good.to_str().unwrap())]).unwrap();
        assert_eq!(c.extra_ca_certificates.as_deref(), Some(crate::tls::AWS_TRUST_ROOTS.as_bytes()));
        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "no certificates here").unwrap();
        for path in [bad.to_str().unwrap(), "/nonexistent/ca.pem"] {
            let err = config(&[(MOMENTO_SIGNING_SECRET, "s"), (AWS_CA_BUNDLE, path)]).unwrap_err().to_string();
            assert!(err.starts_with("AWS_CA_BUNDLE is invalid") && err.contains(path), "{err}");
        }
        assert_eq!(config(&[(MOMENTO_SIGNING_SECRET, "s")]).unwrap().extra_ca_certificates, None);
    }

    #[test]
    fn dead_letter_queue_url_must_look_like_a_url() {
        let c =
            config(&[(MOMENTO_SIGNING_SECRET, "s"), (DEAD_LETTER_QUEUE_URL, "http://127.0.0.1:5000/123/dlq")]).unwrap();
        assert_eq!(c.dead_letter_queue_url.as_deref(), Some("http://127.0.0.1:5000/123/dlq"));
        let err = config(&[(MOMENTO_SIGNING_SECRET, "s"), (DEAD_LETTER_QUEUE_URL, "dlq")]).unwrap_err();
        assert!(err.to_string().starts_with(DEAD_LETTER_QUEUE_URL));
    }
}
