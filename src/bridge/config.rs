//! The bridge's configuration, read from the environment once per cold start. Routing, the
//! dead-letter queue, metrics and trusted certificates are the webhook function's settings,
//! parsed by the same code ([`crate::config`]).

use std::time::Duration;

use super::topic::TopicRef;
use crate::bounds::BRIDGE_SCHEDULE_PERIOD;
use crate::config::{
    ConfigError, DeliveryConfig, MetricsConfig, dead_letter_queue_url, extra_ca_certificates, non_empty,
};

pub const BRIDGE_TOPICS: &str = "BRIDGE_TOPICS";
pub const MOMENTO_API_KEY: &str = "MOMENTO_API_KEY";
pub const MOMENTO_API_KEY_SECRET_ID: &str = "MOMENTO_API_KEY_SECRET_ID";
pub const MOMENTO_ENDPOINT: &str = "MOMENTO_ENDPOINT";
pub const CHECKPOINT_TABLE: &str = "CHECKPOINT_TABLE";
/// Outside Lambda only (which gives each run its deadline): how long one run reads.
pub const BRIDGE_RUN_SECONDS: &str = "BRIDGE_RUN_SECONDS";
/// How often runs start, when not the template's schedule (a shorter one, for tests and demos).
pub const BRIDGE_SCHEDULE_SECONDS: &str = "BRIDGE_SCHEDULE_SECONDS";

/// Every Momento endpoint is a host in this domain.
pub const MOMENTO_DOMAIN: &str = ".momentohq.com";

/// A run outside Lambda reads this long when `BRIDGE_RUN_SECONDS` is not set.
const DEFAULT_RUN: Duration = Duration::from_secs(55);

/// Everything the bridge needs, validated.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    pub topics: Vec<TopicRef>,
    pub api_key: ApiKey,
    /// The region's endpoint when configured (a v2 key needs it; v1 keys and legacy tokens name
    /// their own, which this overrides).
    pub endpoint: Option<String>,
    pub checkpoint_table: String,
    pub delivery: DeliveryConfig,
    pub dead_letter_queue_url: Option<String>,
    pub metrics: Option<MetricsConfig>,
    pub extra_ca_certificates: Option<Vec<u8>>,
    pub local_run: Duration,
    pub schedule_period: Duration,
}

/// Where the Momento API key comes from.
#[derive(Clone)]
pub enum ApiKey {
    /// In `MOMENTO_API_KEY` (local use).
    Given(String),
    /// In the Secrets Manager secret `MOMENTO_API_KEY_SECRET_ID`, read at start-up.
    SecretsManager { secret_id: String },
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Given(_) => f.write_str("Given(<redacted>)"),
            Self::SecretsManager { secret_id } => {
                f.debug_struct("SecretsManager").field("secret_id", secret_id).finish()
            }
        }
    }
}

impl BridgeConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |variable: &'static str, hint: &'static str| {
            non_empty(&lookup, variable).ok_or(ConfigError::Missing { variable, hint })
        };
        let topics =
            parse_topics(&required(BRIDGE_TOPICS, "set it to the topics to read, as cache/topic[,cache/topic...]")?)
                .map_err(|reason| ConfigError::Invalid { variable: BRIDGE_TOPICS, reason })?;
        let api_key = match (non_empty(&lookup, MOMENTO_API_KEY), non_empty(&lookup, MOMENTO_API_KEY_SECRET_ID)) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Conflict {
                    first: MOMENTO_API_KEY,
                    second: MOMENTO_API_KEY_SECRET_ID,
                    hint: "set only one source for the Momento API key",
                });
            }
            (Some(key), None) => ApiKey::Given(key),
            (None, Some(secret_id)) => ApiKey::SecretsManager { secret_id },
            (None, None) => {
                return Err(ConfigError::Missing {
                    variable: MOMENTO_API_KEY_SECRET_ID,
                    hint: "set it to the Secrets Manager secret that holds the Momento API key (or MOMENTO_API_KEY to the key itself)",
                });
            }
        };
        let seconds = |variable: &'static str, default: Duration| match non_empty(&lookup, variable) {
            None => Ok(default),
            Some(raw) => match raw.parse::<u64>() {
                Ok(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
                _ => Err(ConfigError::Invalid {
                    variable,
                    reason: format!("{raw:?} is not a positive whole number of seconds"),
                }),
            },
        };
        let local_run = seconds(BRIDGE_RUN_SECONDS, DEFAULT_RUN)?;
        let schedule_period = seconds(BRIDGE_SCHEDULE_SECONDS, BRIDGE_SCHEDULE_PERIOD)?;
        Ok(Self {
            topics,
            api_key,
            endpoint: non_empty(&lookup, MOMENTO_ENDPOINT)
                .map(|raw| parse_endpoint(&raw))
                .transpose()
                .map_err(|reason| ConfigError::Invalid { variable: MOMENTO_ENDPOINT, reason })?,
            checkpoint_table: required(
                CHECKPOINT_TABLE,
                "set it to the DynamoDB table that keeps each topic's position",
            )?,
            delivery: DeliveryConfig::from_lookup(&lookup)?,
            dead_letter_queue_url: dead_letter_queue_url(&lookup)?,
            metrics: MetricsConfig::if_enabled(&lookup)?,
            extra_ca_certificates: extra_ca_certificates(&lookup)?,
            local_run,
            schedule_period,
        })
    }
}

/// The Momento endpoint: a region's host name in Momento's domain (the bridge reaches
/// `cache.<endpoint>` over TLS, sending the API key), or an `http://` address on this host (a
/// local stand-in: `make demo`, the tests). Anything else is refused before a key is sent: a
/// typo would hand the key to whoever owns the other domain, and plain HTTP to another host would
/// send it in clear text.
pub fn parse_endpoint(raw: &str) -> Result<String, String> {
    if let Some(address) = raw.strip_prefix("http://") {
        let host = address.split(['/', '?']).next().unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(host, port)| match port.bytes().all(|b| b.is_ascii_digit()) {
            true => host,
            false => address,
        });
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        return match loopback {
            true => Ok(raw.to_owned()),
            false => Err(format!(
                "{raw:?} is plain HTTP, which would send the API key in clear text; give the region's endpoint host \
                 name, e.g. cell-4-us-west-2-1.prod.a.momentohq.com (http:// is only for a stand-in on this host)"
            )),
        };
    }
    let host_name = |name: &str| {
        name.split('.').count() >= 2
            && name.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
    };
    match raw {
        _ if raw.starts_with("https://") => Err(format!(
            "{raw:?} is a URL; give the host name alone, e.g. {}",
            raw.trim_start_matches("https://").trim_start_matches("cache.").trim_end_matches('/')
        )),
        _ if raw.starts_with("cache.") => Err(format!(
            "{raw:?} starts with cache., which the bridge adds itself; give {}",
            raw.trim_start_matches("cache.")
        )),
        _ if !host_name(raw) => {
            Err(format!("{raw:?} is not a host name, e.g. cell-4-us-west-2-1.prod.a.momentohq.com"))
        }
        _ if !raw.ends_with(MOMENTO_DOMAIN) => Err(format!(
            "{raw:?} is not in Momento's domain ({}); the API key is sent only there, e.g. \
             cell-4-us-west-2-1.prod.a.momentohq.com",
            &MOMENTO_DOMAIN[1..]
        )),
        _ => Ok(raw.to_owned()),
    }
}

/// `cache/topic[,cache/topic...]`: the cache name ends at the first `/` (cache names have none);
/// the topic is the rest. Each pair once.
pub fn parse_topics(list: &str) -> Result<Vec<TopicRef>, String> {
    let mut topics: Vec<TopicRef> = Vec::new();
    for entry in list.split(',').map(str::trim) {
        let Some((cache, topic)) = entry.split_once('/').filter(|(c, t)| !c.is_empty() && !t.is_empty()) else {
            return Err(format!("{entry:?} is not cache/topic (both non-empty)"));
        };
        let topic = TopicRef { cache: cache.to_owned(), topic: topic.to_owned() };
        if topics.contains(&topic) {
            return Err(format!("{topic} is listed twice"));
        }
        topics.push(topic);
    }
    Ok(topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<BridgeConfig, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        BridgeConfig::from_lookup(|name| vars.get(name).cloned())
    }

    const MINIMAL: &[(&str, &str)] = &[
        (BRIDGE_TOPICS, "orders/checkout, orders/refunds/eu"),
        (MOMENTO_API_KEY_SECRET_ID, "momento-api-key"),
        (MOMENTO_ENDPOINT, "cell-4-us-west-2-1.prod.a.momentohq.com"),
        (CHECKPOINT_TABLE, "stack-BridgeCheckpoints"),
    ];

    #[test]
    fn the_minimal_configuration_reads_topics_key_endpoint_and_table() {
        let config = config(MINIMAL).unwrap();
        assert_eq!(
            config.topics,
            [
                TopicRef { cache: "orders".into(), topic: "checkout".into() },
                TopicRef { cache: "orders".into(), topic: "refunds/eu".into() },
            ]
        );
        assert!(matches!(&config.api_key, ApiKey::SecretsManager { secret_id } if secret_id == "momento-api-key"));
        assert_eq!(config.endpoint.as_deref(), Some("cell-4-us-west-2-1.prod.a.momentohq.com"));
        assert_eq!(config.checkpoint_table, "stack-BridgeCheckpoints");
        assert_eq!(config.local_run, DEFAULT_RUN);
        assert_eq!(config.schedule_period, BRIDGE_SCHEDULE_PERIOD, "the template's schedule");
        assert!(config.metrics.is_some() && config.dead_letter_queue_url.is_none());
    }

    #[test]
    fn each_required_variable_is_named_when_missing() {
        for missing in [BRIDGE_TOPICS, MOMENTO_API_KEY_SECRET_ID, CHECKPOINT_TABLE] {
            let vars: Vec<_> = MINIMAL.iter().copied().filter(|(name, _)| *name != missing).collect();
            match config(&vars) {
                Err(ConfigError::Missing { variable, .. }) => assert_eq!(variable, missing),
                other => panic!("{missing}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_key_comes_from_exactly_one_place_and_is_never_printed() {
        let mut vars = MINIMAL.to_vec();
        vars.push((MOMENTO_API_KEY, "eyJ-the-key"));
        assert!(matches!(config(&vars), Err(ConfigError::Conflict { .. })));
        vars.retain(|(name, _)| *name != MOMENTO_API_KEY_SECRET_ID);
        let config = config(&vars).unwrap();
        assert!(matches!(&config.api_key, ApiKey::Given(key) if key == "eyJ-the-key"));
        assert!(!format!("{config:?}").contains("eyJ-the-key"));
    }

    #[test]
    fn the_endpoint_is_a_host_name_or_plain_http_on_this_host_only() {
        for given in [
            "cell-4-us-west-2-1.prod.a.momentohq.com",
            "http://127.0.0.1:9000",
            "http://localhost:1/",
            "http://[::1]:2",
        ] {
            assert_eq!(parse_endpoint(given).unwrap(), given);
        }
        let refused = [
            ("http://10.0.0.8:9000", "clear text"),
            ("http://cell-4.prod.a.momentohq.com", "clear text"),
            ("http://", "clear text"),
            (
                "https://cache.cell-4.prod.a.momentohq.com/",
                "give the host name alone, e.g. cell-4.prod.a.momentohq.com",
            ),
            ("cache.cell-4.prod.a.momentohq.com", "give cell-4.prod.a.momentohq.com"),
            ("Cell-4.prod.a.momentohq.com", "not a host name"),
            ("momentohq", "not a host name"),
            ("cell-4..momentohq.com", "not a host name"),
            ("-cell.momentohq.com", "not a host name"),
            ("cell-.momentohq.com", "not a host name"),
            ("cell 4.momentohq.com", "not a host name"),
            ("cell-4.prod.a.momentohq.co", "not in Momento's domain"),
            ("cell-4.prod.a.momentohq.com.evil.example", "not in Momento's domain"),
            ("momentohq.com", "not in Momento's domain"),
            ("evilmomentohq.com", "not in Momento's domain"),
        ];
        for (raw, reason) in refused {
            let error = parse_endpoint(raw).unwrap_err();
            assert!(error.contains(reason), "{raw}: {error}");
        }
        let mut vars = MINIMAL.to_vec();
        vars.retain(|(name, _)| *name != MOMENTO_ENDPOINT);
        vars.push((MOMENTO_ENDPOINT, "http://192.0.2.1:8080"));
        assert!(matches!(config(&vars), Err(ConfigError::Invalid { variable: MOMENTO_ENDPOINT, .. })));
        // A v1 key or a legacy token names its endpoint: none configured is not a mistake here.
        vars.retain(|(name, _)| *name != MOMENTO_ENDPOINT);
        assert_eq!(config(&vars).unwrap().endpoint, None);
    }

    #[test]
    fn bad_topic_lists_and_run_lengths_are_refused() {
        for list in ["orders", "/t", "c/", "orders/a,,orders/b", "orders/a,orders/a"] {
            assert!(parse_topics(list).is_err(), "{list}");
        }
        for variable in [BRIDGE_RUN_SECONDS, BRIDGE_SCHEDULE_SECONDS] {
            for seconds in ["0", "-1", "ten"] {
                let mut vars = MINIMAL.to_vec();
                vars.push((variable, seconds));
                match config(&vars) {
                    Err(ConfigError::Invalid { variable: named, .. }) => assert_eq!(named, variable, "{seconds}"),
                    other => panic!("{variable}={seconds}: {other:?}"),
                }
            }
        }
        let mut vars = MINIMAL.to_vec();
        vars.extend([(BRIDGE_RUN_SECONDS, "3"), (BRIDGE_SCHEDULE_SECONDS, "4")]);
        let config = config(&vars).unwrap();
        assert_eq!((config.local_run, config.schedule_period), (Duration::from_secs(3), Duration::from_secs(4)));
    }
}
