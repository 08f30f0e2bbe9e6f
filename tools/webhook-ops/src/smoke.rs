//! `webhook-ops smoke`: is my webhook working? Signs a fresh test event exactly as Momento does,
//! POSTs it to the webhook URL, and says in words what happened and what to do about it, judged
//! as Momento judges it: a 2xx answer within 5 s of sending, or the event is lost.
//!
//! The URL and the secret come from the stack's outputs (`WebhookUrl`, `SigningSecretArn`), or
//! are given (`--url`, with `--secret-id` or `$MOMENTO_SIGNING_SECRET` for a local run). With a
//! stack, it also says whether the alarms reach anyone ([`crate::alarms`]).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use momento_webhook_receiver::bounds::{MOMENTO_DEADLINE, SECRET_MIN_READ_INTERVAL};
use momento_webhook_receiver::config::MOMENTO_SIGNING_SECRET;
use momento_webhook_receiver::event::unix_millis;
use momento_webhook_receiver::http_handler::SIGNATURE_HEADER;
use momento_webhook_receiver::outcome::{Code, RefusalCode};
use momento_webhook_receiver::routing::Target;
use momento_webhook_receiver::signature::{SigningSecret, secret_list};
use serde_json::{Value, json};

use crate::function::{self, FunctionArgs};
use crate::function_url::MOMENTO_USER_AGENT;
use crate::{Failure, alarms, rotate, sign, stack};

/// The test event's cache and topic by default: chosen so that no route of the stack's template
/// sends them to a state machine unless its patterns take every topic (then smoke refuses
/// without --allow-workflow).
pub const DEFAULT_CACHE: &str = "momento-webhook-smoke";
pub const DEFAULT_TOPIC: &str = "smoke-test";

#[derive(Args, Debug)]
pub struct SmokeArgs {
    /// The webhook URL (default: the stack's WebhookUrl output).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The Secrets Manager secret holding the signing secret (default: the stack's
    /// SigningSecretArn output; with --url and no --secret-id, $MOMENTO_SIGNING_SECRET).
    #[arg(long, value_name = "ARN_OR_NAME")]
    secret_id: Option<String>,
    /// The test event's cache (pick one a route matches to try that route).
    #[arg(long, default_value = DEFAULT_CACHE)]
    cache: String,
    /// The test event's topic.
    #[arg(long, default_value = DEFAULT_TOPIC)]
    topic: String,
    /// Send this event file's body instead (a body, or a Function URL event from events/),
    /// re-dated to now.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cache", "topic"])]
    event: Option<PathBuf>,
    /// Send the event even when the function routes it to a state machine (it will run).
    #[arg(long)]
    allow_workflow: bool,
    /// Wait this many seconds for an answer. Momento waits 5: a later answer is reported as too
    /// slow, and the event as one Momento would have lost.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout: u64,
    #[command(flatten)]
    function: FunctionArgs,
}

pub async fn run(args: SmokeArgs) -> Result<(), Failure> {
    // A local run (--url with the secret in the environment) needs no AWS at all.
    let env_secret = args.url.as_ref().and(std::env::var(MOMENTO_SIGNING_SECRET).ok()).filter(|s| !s.is_empty());
    let needs_stack = args.url.is_none() || (args.secret_id.is_none() && env_secret.is_none());
    let stack = match needs_stack {
        true => Some(stack::required(&args.function.stack, "pass --url and --secret-id").await?),
        false => None,
    };
    let url = match (&args.url, &stack) {
        (Some(url), _) => url.clone(),
        (None, Some((_, stack))) => stack.output("WebhookUrl")?.to_owned(),
        (None, None) => return Err(Failure::usage("no URL: pass --url or --stack")),
    };
    let secret =
        match (&args.secret_id, env_secret, &stack) {
            (Some(id), _, stack) => {
                let sdk = match stack {
                    Some((sdk, _)) => sdk.clone(),
                    None => crate::aws::sdk_config(args.function.stack.region.as_deref()).await?,
                };
                rotate::first_secret(&sdk, id).await?
            }
            (None, Some(list), _) => secret_list(&list)
                .ok()
                .and_then(|secrets| secrets.first().map(|s| (*s).to_owned()))
                .ok_or_else(|| Failure::usage(format!("{MOMENTO_SIGNING_SECRET} holds no usable secret")))?,
            (None, None, Some((sdk, stack))) => rotate::first_secret(sdk, stack.output("SigningSecretArn")?).await?,
            (None, None, None) => {
                return Err(Failure::usage(
                    "no signing secret: pass --secret-id, or set MOMENTO_SIGNING_SECRET with --url",
                ));
            }
        };

    let (body, cache, topic) = test_event(&args)?;
    // Where the deployed function would send it: never start a real workflow unasked.
    if !args.allow_workflow && (stack.is_some() || args.function.function.is_some()) {
        let (_, function) = function::required(&args.function, "smoke checks where the event would go").await?;
        if let Some(Target::StateMachine(arn)) = function.delivery()?.routes.route(&cache, &topic) {
            return Err(Failure::usage(format!(
                "function {} routes cache {cache:?} / topic {topic:?} to state machine {arn}, so this test would start a \
                 real workflow; choose --cache/--topic its routes send to a bus, or pass --allow-workflow",
                function.name
            )));
        }
    }
    let signature = SigningSecret::new(&secret).sign(&body);
    eprintln!("sending a signed test event (cache {cache:?}, topic {topic:?}) to {url}");
    let sent = Instant::now();
    let answer = post(&url, &body, &signature, Duration::from_secs(args.timeout));
    let verdict = verdict(&url, answer, sent.elapsed());
    println!("{}", verdict.text);
    // Whether anyone hears of the events this webhook may lose later.
    if let Some((sdk, stack)) = &stack {
        match stack.outputs.get(alarms::OUTPUT) {
            Some(topics) => alarms::report(sdk, topics).await.iter().for_each(|line| println!("{line}")),
            None => println!(
                "ALARMS: not checked: stack {} has no {} output (it was deployed before there was one; `make deploy` \
                 adds it).",
                stack.name,
                alarms::OUTPUT
            ),
        }
    }
    if verdict.delivered { Ok(()) } else { Err(Failure::not_done("the test event was not delivered")) }
}

/// The body to send, with its cache and topic.
fn test_event(args: &SmokeArgs) -> Result<(Vec<u8>, String, String), Failure> {
    if let Some(path) = &args.event {
        let input = std::fs::read(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        let body = match serde_json::from_slice::<Value>(&input) {
            Ok(event) if event.get("requestContext").is_some() => {
                sign::body_of_event(&event).map_err(Failure::usage)?.0
            }
            _ => input,
        };
        let body = sign::refreshed(&body).map_err(Failure::usage)?;
        let value: Value = serde_json::from_slice(&body).map_err(|e| Failure::usage(e.to_string()))?;
        let field = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
        return Ok((body, field("cache"), field("topic")));
    }
    let now = unix_millis(SystemTime::now());
    let body = json!({
        "cache": args.cache,
        "topic": args.topic,
        "event_timestamp": now,
        "publish_timestamp": now,
        // Unique per run, so that a state machine target never takes it for a duplicate.
        "topic_sequence_number": u64::try_from(now).unwrap_or_default(),
        "token_id": "",
        "text": json!({"smoke_test": true, "sent_by": "webhook-ops smoke"}).to_string(),
    });
    Ok((body.to_string().into_bytes(), args.cache.clone(), args.topic.clone()))
}

/// What came back: a status and body, or why nothing did.
type Answer = Result<(u16, String), NoAnswer>;

/// Why no answer came, told apart by the HTTP client's error kind.
#[derive(Debug, PartialEq, Eq)]
enum NoAnswer {
    /// Nothing within the time smoke waits.
    TimedOut(Duration),
    /// Refused, unreachable, not HTTP, ...
    Failed(String),
}

fn post(url: &str, body: &[u8], signature: &str, timeout: Duration) -> Answer {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
    let no_answer = |error: ureq::Error| match error {
        ureq::Error::Timeout(_) => NoAnswer::TimedOut(timeout),
        other => NoAnswer::Failed(other.to_string()),
    };
    let mut response = agent
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", MOMENTO_USER_AGENT)
        .header(SIGNATURE_HEADER, signature)
        .send(body)
        .map_err(no_answer)?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().map_err(no_answer)?;
    Ok((status, text))
}

/// What the answer means, in words.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    pub delivered: bool,
    pub text: String,
}

/// Judges `answer`, received `elapsed` after sending, as Momento would: only a delivery
/// answered within Momento's deadline counts.
fn verdict(url: &str, answer: Answer, elapsed: Duration) -> Verdict {
    let deadline = MOMENTO_DEADLINE.as_secs();
    let (status, text) = match answer {
        Ok(answer) => answer,
        Err(NoAnswer::TimedOut(waited)) => {
            return Verdict::not(format!(
                "NO ANSWER within {} s from {url}. Momento gives up after {deadline} s and loses the event. Check the \
                 URL (the stack's WebhookUrl output), the function's log, and for a local URL that `make watch` is running.",
                waited.as_secs()
            ));
        }
        Err(NoAnswer::Failed(error)) => {
            return Verdict::not(format!(
                "NO ANSWER from {url}: {error}. Check the URL (the stack's WebhookUrl output); for a local URL, start `make watch`."
            ));
        }
    };
    let judged = judge(url, status, &text);
    if elapsed <= MOMENTO_DEADLINE {
        return Verdict { text: format!("{} ({:.2} s)", judged.text, elapsed.as_secs_f64()), ..judged };
    }
    Verdict::not(format!(
        "TOO SLOW: the answer came after {:.1} s, but Momento stops waiting after {deadline} s, counts the delivery as \
         failed and never retries, so with this delay Momento loses events. The answer was: {} Look in the function's \
         log for a slow start-up (Secrets Manager) or a slow target.",
        elapsed.as_secs_f64(),
        judged.text
    ))
}

/// What an answer's status and body say, whatever its timing: its code (`status` of a success,
/// `error` of a failure) read into the function's own [`Code`], so every outcome the function
/// can answer with has its words here.
fn judge(url: &str, status: u16, text: &str) -> Verdict {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    let message = field("message");
    let code = Code::parse(field("status")).or_else(|| Code::parse(field("error")));
    let Some(code) = code.filter(|code| code.status().as_u16() == status) else {
        return Verdict::not(match status {
            403 if code.is_none() => format!(
                "REFUSED by the Function URL itself (HTTP 403 {text}): the URL's AuthType is not NONE, or this is not \
                 the webhook's URL."
            ),
            _ => format!(
                "UNEXPECTED ANSWER (HTTP {status}): {text}. Is {url} the webhook's Function URL (the stack's WebhookUrl \
                 output)?"
            ),
        });
    };
    match code {
        Code::Delivered => {
            let receipt = match field("target") {
                "stepfunctions" => format!("started execution {}", field("execution_arn")),
                _ => format!("put on the event bus as event {}", field("event_id")),
            };
            Verdict { delivered: true, text: format!("DELIVERED: {receipt}.") }
        }
        Code::Duplicate => Verdict {
            delivered: true,
            text: format!("DELIVERED (a duplicate: execution {} had already started).", field("execution_arn")),
        },
        Code::Ignored => Verdict::not(
            "IGNORED: the webhook answered 200 but no route matches this cache and topic, so nothing was delivered. \
             Pass --cache/--topic that a route matches (ROUTES, or the stack's state machine patterns)."
                .to_owned(),
        ),
        Code::DeadLettered => Verdict::not(format!(
            "DEAD-LETTERED: {} refused the event with {}; it is safe in the dead-letter queue. {} Then run \
             `webhook-ops redrive`.",
            field("target"),
            field("error"),
            fix_for(field("error"))
        )),
        Code::Refused(RefusalCode::InvalidSignature) => Verdict::not(format!(
            "REFUSED ({code}): the function's signing secret is not the one this test used. After a rotation in \
             Momento, store the new secret with `webhook-ops rotate`; every instance accepts it within {} s. \
             ({message})",
            SECRET_MIN_READ_INTERVAL.as_secs()
        )),
        Code::Refused(RefusalCode::StaleEvent) => Verdict::not(format!(
            "REFUSED ({code}): this machine's clock and the function's differ by more than the freshness window; \
             fix the clock here (Lambda's is right). ({message})"
        )),
        Code::Refused(_) => Verdict::not(format!("REFUSED ({code}, HTTP {status}): {message}")),
        Code::SigningSecretUnavailable => Verdict::not(format!(
            "LOST ({code}): the function could not read its signing secret from Secrets Manager for too long, so it \
             refuses everything (fail closed). Check the secret and the function's permissions. ({message})"
        )),
        Code::DeliveryFailed | Code::DeadLetterFailed => Verdict::not(format!(
            "LOST ({code}): {} answered {} and the event could not be kept; Momento would have lost it. {message}",
            field("target"),
            field("aws_error_code")
        )),
    }
}

impl Verdict {
    fn not(text: String) -> Self {
        Self { delivered: false, text }
    }
}

/// What usually fixes a delivery failure with this AWS error code.
fn fix_for(code: &str) -> &'static str {
    match code {
        "ResourceNotFoundException" => "The event bus does not exist: create it, or fix EventBusName.",
        "StateMachineDoesNotExist" => "The state machine does not exist: create it, or fix StateMachineArn.",
        "AccessDeniedException" | "AccessDenied" => {
            "The function's role may not send there: check that the bus or state machine is the one the stack grants."
        }
        "ThrottlingException" => "The target is throttling: raise its quota, or wait.",
        "Timeout" | "DispatchFailure" => {
            "The target did not answer in time: check the service's health in this region."
        }
        _ => "Read the error in the function's log.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://x.lambda-url.us-east-1.on.aws/";

    fn answer(status: u16, body: Value) -> Verdict {
        verdict(URL, Ok((status, body.to_string())), Duration::from_millis(300))
    }

    #[test]
    fn only_deliveries_count_as_delivered() {
        let delivered = answer(200, json!({"status": "delivered", "target": "eventbridge", "event_id": "e-1"}));
        assert!(delivered.delivered && delivered.text.contains("e-1"), "{delivered:?}");
        let started = answer(200, json!({"status": "delivered", "target": "stepfunctions", "execution_arn": "arn:x"}));
        assert!(started.delivered && started.text.contains("arn:x"), "{started:?}");
        assert!(answer(200, json!({"status": "duplicate", "execution_arn": "arn:x"})).delivered);
        for (status, body) in [
            (200, json!({"status": "ignored"})),
            (202, json!({"status": "dead_lettered", "target": "eventbridge", "error": "ResourceNotFoundException"})),
            (401, json!({"error": "invalid_signature", "message": "m"})),
            (403, json!({"error": "stale_event", "message": "m"})),
            (502, json!({"error": "delivery_failed", "aws_error_code": "Timeout"})),
            (403, json!({"Message": "Forbidden"})),
            (404, json!(null)),
        ] {
            assert!(!answer(status, body.clone()).delivered, "{status} {body}");
        }
    }

    #[test]
    fn every_answer_the_function_gives_is_understood() {
        for code in Code::all() {
            let key = if code.status().is_success() { "status" } else { "error" };
            let judged = answer(code.status().as_u16(), json!({key: code.as_str(), "message": "m"}));
            assert!(!judged.text.starts_with("UNEXPECTED"), "{code}: {judged:?}");
            assert!(code.status().is_success() || judged.text.contains(code.as_str()), "{code}: {judged:?}");
            assert_eq!(judged.delivered, matches!(code, Code::Delivered | Code::Duplicate), "{code}");
        }
        // A known code with another status than the function gives it is not the function's answer.
        let odd = answer(500, json!({"error": "invalid_signature", "message": "m"}));
        assert!(odd.text.starts_with("UNEXPECTED") && !odd.delivered, "{odd:?}");
    }

    #[test]
    fn each_failure_says_what_to_do() {
        let cases = [
            (answer(200, json!({"status": "ignored"})), "--cache/--topic"),
            (
                answer(
                    202,
                    json!({"status": "dead_lettered", "target": "eventbridge", "error": "ResourceNotFoundException"}),
                ),
                "event bus does not exist",
            ),
            (answer(401, json!({"error": "invalid_signature", "message": "m"})), "webhook-ops rotate"),
            (answer(403, json!({"error": "stale_event", "message": "m"})), "clock"),
            (answer(403, json!({"Message": "Forbidden"})), "AuthType"),
            (verdict(URL, Err(NoAnswer::Failed("Connection refused".into())), Duration::ZERO), "make watch"),
            (verdict(URL, Err(NoAnswer::TimedOut(Duration::from_secs(3))), Duration::from_secs(3)), "within 3 s"),
        ];
        for (verdict, hint) in cases {
            assert!(verdict.text.contains(hint), "{hint}: {}", verdict.text);
        }
    }

    #[test]
    fn an_answer_after_momentos_deadline_is_not_a_delivery_whatever_it_says() {
        let delivered = json!({"status": "delivered", "target": "eventbridge", "event_id": "e-1"}).to_string();
        let in_time = verdict(URL, Ok((200, delivered.clone())), MOMENTO_DEADLINE);
        assert!(in_time.delivered && in_time.text.starts_with("DELIVERED"), "{in_time:?}");
        let late = verdict(URL, Ok((200, delivered)), MOMENTO_DEADLINE + Duration::from_millis(1));
        assert!(!late.delivered, "{late:?}");
        assert!(
            late.text.starts_with("TOO SLOW") && late.text.contains("5 s") && late.text.contains("e-1"),
            "{late:?}"
        );
    }
}
