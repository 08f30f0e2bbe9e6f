//! `webhook-ops sign`: signs a webhook body the way Momento does, to craft test requests.
//!
//! Reads a body (or a Function URL event file from `events/`) and prints the
//! `momento-signature` value, or a complete Function URL event for `cargo lambda invoke`.

use std::io::Read;
use std::path::PathBuf;
use std::time::SystemTime;

use clap::Args;
use momento_webhook_receiver::config::MOMENTO_SIGNING_SECRET;
use momento_webhook_receiver::event::unix_millis;
use momento_webhook_receiver::signature::SecretSet;
use serde_json::Value;

use crate::Failure;
use crate::function_url::request_event;

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The signing secret (default: the first one in $MOMENTO_SIGNING_SECRET). For test secrets:
    /// a real one belongs in the environment, not in your shell history.
    #[arg(long, value_name = "SECRET")]
    secret: Option<String>,
    /// Set publish_timestamp and event_timestamp to now before signing.
    #[arg(long)]
    fresh: bool,
    /// Print a whole signed Function URL event instead of the signature.
    #[arg(long)]
    event: bool,
    /// With --event: base64-encode the body, as Lambda does for binary content types.
    #[arg(long)]
    base64: bool,
    /// The body, or a Function URL event whose body is used (default: standard input).
    file: Option<PathBuf>,
}

pub fn run(args: SignArgs) -> Result<(), Failure> {
    println!("{}", signed(args).map_err(Failure::not_done)?);
    Ok(())
}

fn signed(args: SignArgs) -> Result<String, String> {
    let secret = args
        .secret
        .or_else(|| std::env::var(MOMENTO_SIGNING_SECRET).ok())
        .ok_or(format!("no secret: pass --secret or set {MOMENTO_SIGNING_SECRET}"))?;
    let secrets = SecretSet::parse(&secret).map_err(|e| format!("the secret is unusable: {e}"))?;
    let secret = secrets.first().ok_or("the secret is empty")?;

    let mut input = Vec::new();
    match &args.file {
        Some(path) => input = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => {
            std::io::stdin().read_to_end(&mut input).map_err(|e| format!("standard input: {e}"))?;
        }
    }
    let (mut body, method, base64) = match serde_json::from_slice::<Value>(&input) {
        Ok(event) if event.get("requestContext").is_some() => body_of_event(&event)?,
        _ => (input, "POST".to_owned(), args.base64),
    };
    if args.fresh {
        body = refreshed(&body)?;
    }
    let signature = secret.sign(&body);
    if args.event {
        let event = request_event(&method, &body, Some(&signature), base64 || args.base64);
        serde_json::to_string_pretty(&event).map_err(|e| e.to_string())
    } else {
        Ok(signature)
    }
}

/// The body, method and base64 flag of a Function URL event file.
pub fn body_of_event(event: &Value) -> Result<(Vec<u8>, String, bool), String> {
    let body = event.get("body").and_then(Value::as_str).unwrap_or_default();
    let base64 = event.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false);
    let method = event.pointer("/requestContext/http/method").and_then(Value::as_str).unwrap_or("POST").to_owned();
    let bytes = if base64 {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("the event's body is not base64: {e}"))?
    } else {
        body.as_bytes().to_vec()
    };
    Ok((bytes, method, base64))
}

/// `body` with `publish_timestamp` and `event_timestamp` set to now.
pub fn refreshed(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| format!("--fresh needs a JSON body: {e}"))?;
    let now = unix_millis(SystemTime::now());
    let object = value.as_object_mut().ok_or("--fresh needs a JSON object body")?;
    object.insert("publish_timestamp".into(), now.into());
    object.insert("event_timestamp".into(), now.into());
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}
