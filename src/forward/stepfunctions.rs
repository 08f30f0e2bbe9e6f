//! The Step Functions adapter: one `StartExecution` per event, named so that a second start of
//! the same event cannot create a second execution.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use aws_sdk_sfn::error::ProvideErrorMetadata;
use sha3::{Digest, Sha3_256};

use super::port::Delivered;
use crate::arn::{Arn, StateMachineArn};
use crate::event::{Epoch, WebhookEvent};
use crate::remote_error::RemoteError;

/// Step Functions' limit on execution names.
pub const MAX_EXECUTION_NAME_LEN: usize = 80;
const HASH_HEX_LEN: usize = 16;
/// A returned execution that started this long before our request is an earlier one (Step
/// Functions answers a repeated name + input on a running standard workflow with the original
/// execution). The margin absorbs clock differences between this function and AWS.
const DUPLICATE_MARGIN: Duration = Duration::from_millis(250);

/// The deterministic execution name for an event: `<cache>_<topic>-<seq>-<hash>`.
///
/// Only `[A-Za-z0-9_-]`, at most 80 characters. Cache and topic are kept as far as they fit
/// (other characters become `_`), and the hash covers the exact (`cache`, `topic`,
/// `topic_sequence_number`, [`Epoch`]) tuple, so names that look alike after replacement or
/// cutting still differ.
pub fn execution_name(cache: &str, topic: &str, sequence: u64, epoch: Epoch) -> String {
    let mut hasher = Sha3_256::new();
    // Length-prefixed, so ("ab", "c") and ("a", "bc") hash differently.
    for part in [cache.as_bytes(), topic.as_bytes()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.update(sequence.to_be_bytes());
    match epoch {
        // As before pages existed, so that a redriven webhook event keeps its execution's name.
        Epoch::Published(publish_timestamp) => hasher.update(publish_timestamp.to_be_bytes()),
        Epoch::Page(page) => {
            hasher.update(b"page");
            hasher.update(page.to_be_bytes());
        }
    }
    let hash = hex::encode(&hasher.finalize()[..HASH_HEX_LEN / 2]);

    let suffix = format!("-{sequence}-{hash}");
    // At most 1 + 20 + 1 + 16 = 38, so at least 42 characters remain for cache and topic.
    let budget = MAX_EXECUTION_NAME_LEN - suffix.len() - 1;
    let cache = sanitize(cache);
    let topic = sanitize(topic);
    // Share the room fairly when both are long; give the spare to whichever needs it.
    let cache_len = cache.len().min(budget.saturating_sub(topic.len()).max(budget / 2));
    let topic_len = topic.len().min(budget - cache_len);
    format!("{}_{}{suffix}", &cache[..cache_len], &topic[..topic_len])
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Express executions have ARNs of the form `arn:<partition>:states:<region>:<account>:express:...`.
/// Step Functions does not deduplicate them by name, so exactly-once starts hold only for
/// standard workflows.
pub fn is_express_execution(execution_arn: &str) -> bool {
    Arn::parse(execution_arn).is_some_and(|arn| arn.resource.starts_with("express:"))
}

/// Owns one Step Functions client per region the routes name: a state machine in another region
/// must be called at that region's endpoint.
#[derive(Debug, Clone, Default)]
pub struct StepFunctionsForwarder {
    clients: Vec<(String, aws_sdk_sfn::Client)>,
}

impl StepFunctionsForwarder {
    /// `clients`: (region, client) pairs.
    pub fn new(clients: Vec<(String, aws_sdk_sfn::Client)>) -> Self {
        Self { clients }
    }

    fn client(&self, machine: &StateMachineArn<'_>) -> Result<&aws_sdk_sfn::Client, RemoteError> {
        let region = machine.arn.region;
        self.clients.iter().find(|(r, _)| r == region).map(|(_, client)| client).ok_or_else(|| {
            RemoteError::new("NoClient", format!("no Step Functions client was built for region {region:?}"))
        })
    }

    /// Starts (at most once per event) an execution of `state_machine_arn` whose input is the
    /// event's detail object.
    pub async fn start(
        &self,
        event: &WebhookEvent,
        state_machine_arn: &str,
        trace_header: Option<&str>,
    ) -> Result<Delivered, RemoteError> {
        let machine = StateMachineArn::parse(state_machine_arn)
            .ok_or_else(|| RemoteError::new("InvalidArn", format!("{state_machine_arn} is not a state machine ARN")))?;
        let name = execution_name(&event.cache, &event.topic, event.topic_sequence_number, event.epoch());
        let requested_at = SystemTime::now();
        let result = self
            .client(&machine)?
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(&name)
            .input(event.detail_json())
            .set_trace_header(trace_header.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(output) => {
                if is_express_execution(output.execution_arn()) {
                    warn_express_once(state_machine_arn);
                }
                let started = SystemTime::try_from(*output.start_date()).ok();
                let execution_arn = output.execution_arn().to_owned();
                if started.is_some_and(|s| s + DUPLICATE_MARGIN < requested_at) {
                    Ok(Delivered::AlreadyStarted { execution_arn })
                } else {
                    Ok(Delivered::StepFunctions { execution_arn })
                }
            }
            Err(err) if err.code() == Some("ExecutionAlreadyExists") => {
                Ok(Delivered::AlreadyStarted { execution_arn: machine.execution_arn(&name) })
            }
            Err(err) => Err(RemoteError::from_sdk(&err)),
        }
    }
}

/// Said once per cold start: a replayed or redriven event can start an Express workflow twice.
fn warn_express_once(state_machine_arn: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            state_machine_arn,
            "this is an Express state machine: Step Functions does not deduplicate Express executions by name, \
             so a replayed or redriven event can start it twice; use a Standard state machine for exactly-once starts"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_alphabet(name: &str) -> bool {
        name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    #[test]
    fn names_are_readable_and_deterministic() {
        let name = execution_name("orders", "checkout-eu", 42, Epoch::Published(1_700_000_000_000));
        assert!(name.starts_with("orders_checkout-eu-42-"), "{name}");
        assert_eq!(name, execution_name("orders", "checkout-eu", 42, Epoch::Published(1_700_000_000_000)));
        assert_eq!(name.len(), "orders_checkout-eu-42-".len() + HASH_HEX_LEN);
    }

    #[test]
    fn names_obey_the_length_and_alphabet_rule_for_every_kind_of_input() {
        let long = "x".repeat(300);
        let cases: &[(&str, &str, u64, i64)] = &[
            ("a", "b", 0, 0),
            ("a#b", "c/d", u64::MAX, i64::MIN),
            (&long, &long, u64::MAX, i64::MAX),
            (&long, "t", 1, 1),
            ("c", &long, 1, 1),
            ("🚀 caché", "tópic with spaces\n", 5, -5),
            ("", "", 0, 0),
        ];
        for (cache, topic, seq, ts) in cases {
            let name = execution_name(cache, topic, *seq, Epoch::Published(*ts));
            assert!(name.len() <= MAX_EXECUTION_NAME_LEN, "{} chars: {name}", name.len());
            assert!(valid_alphabet(&name), "{name}");
        }
    }

    #[test]
    fn long_cache_and_topic_both_stay_visible() {
        let name = execution_name(&"c".repeat(100), &"t".repeat(100), 7, Epoch::Published(1));
        assert!(name.starts_with("ccccccccccccccccccc"), "{name}");
        assert!(name.contains("_tttttttttttttttttt"), "{name}");
        let short_cache = execution_name("orders", &"t".repeat(100), 7, Epoch::Published(1));
        assert!(short_cache.starts_with("orders_tttt"), "{short_cache}");
    }

    #[test]
    fn names_differ_whenever_the_tuple_differs() {
        let long_a = format!("{}a", "x".repeat(200));
        let long_b = format!("{}b", "x".repeat(200));
        let tuples: Vec<(&str, &str, u64, i64)> = vec![
            ("a#b", "t", 1, 1),
            ("a/b", "t", 1, 1),
            ("a_b", "t", 1, 1),
            ("a", "b_t", 1, 1),
            ("a_b_t", "", 1, 1),
            (&long_a, "t", 1, 1),
            (&long_b, "t", 1, 1),
            ("a_b", "t", 2, 1),
            ("a_b", "t", 1, 2),
            ("é", "t", 1, 1),
            ("è", "t", 1, 1),
        ];
        let names: std::collections::HashSet<String> =
            tuples.iter().map(|(c, t, s, p)| execution_name(c, t, *s, Epoch::Published(*p))).collect();
        assert_eq!(names.len(), tuples.len(), "{names:#?}");
    }

    #[test]
    fn a_page_names_another_execution_than_a_publish_time_and_webhook_names_stay_as_they_were() {
        // Computed before pages existed: a webhook event redriven after an upgrade must keep it.
        assert_eq!(
            execution_name("orders", "checkout-eu", 42, Epoch::Published(1_700_000_000_000)),
            "orders_checkout-eu-42-e642132bc3cdfafa"
        );
        let names: std::collections::HashSet<String> =
            [Epoch::Published(1), Epoch::Page(1), Epoch::Page(2), Epoch::Published(2)]
                .into_iter()
                .map(|epoch| execution_name("orders", "checkout", 7, epoch))
                .collect();
        assert_eq!(names.len(), 4, "{names:#?}");
    }

    #[test]
    fn express_executions_are_told_apart_by_their_arn() {
        assert!(is_express_execution("arn:aws:states:us-east-1:123456789012:express:m:n:0a1b-2c3d"));
        assert!(!is_express_execution("arn:aws:states:us-east-1:123456789012:execution:m:express"));
        assert!(!is_express_execution("express"));
    }
}
