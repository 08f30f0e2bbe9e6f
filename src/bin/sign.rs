//! `sign`: signs a webhook body the way Momento does, to craft test requests.
//!
//! Reads a body (or a Function URL event file from `events/`) and prints the
//! `momento-signature` value, or a complete Function URL event for `cargo lambda invoke`.

use std::io::Read;
use std::process::ExitCode;
use std::time::SystemTime;

use momento_webhook_receiver::config::MOMENTO_SIGNING_SECRET;
use momento_webhook_receiver::event::unix_millis;
use momento_webhook_receiver::function_url::request_event;
use momento_webhook_receiver::signature::SecretSet;
use serde_json::Value;

const USAGE: &str = "usage: sign [--secret SECRET] [--fresh] [--event] [--base64] [FILE]

Prints the momento-signature (hex HMAC-SHA3-256) of the body in FILE (or standard input).
FILE may also be a Function URL event (like those in events/): its body is used.

  --secret SECRET  the signing secret (default: the first one in $MOMENTO_SIGNING_SECRET)
  --fresh          set publish_timestamp and event_timestamp to now before signing
  --event          print a whole signed Function URL event instead of the signature
  --base64         with --event: base64-encode the body, as Lambda does for binary types";

struct Args {
    secret: Option<String>,
    fresh: bool,
    event: bool,
    base64: bool,
    file: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut parsed = Args { secret: None, fresh: false, event: false, base64: false, file: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secret" => parsed.secret = Some(args.next().ok_or("--secret needs a value")?),
            "--fresh" => parsed.fresh = true,
            "--event" => parsed.event = true,
            "--base64" => parsed.base64 = true,
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag:?}")),
            file => parsed.file = Some(file.to_owned()),
        }
    }
    Ok(parsed)
}

fn run(args: Args) -> Result<String, String> {
    let secret = args
        .secret
        .or_else(|| std::env::var(MOMENTO_SIGNING_SECRET).ok())
        .ok_or(format!("no secret: pass --secret or set {MOMENTO_SIGNING_SECRET}"))?;
    let secrets = SecretSet::parse(&secret).map_err(|e| format!("the secret is unusable: {e}"))?;
    let secret = secrets.first().ok_or("the secret is empty")?;

    let mut input = Vec::new();
    match &args.file {
        Some(path) => input = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?,
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

fn body_of_event(event: &Value) -> Result<(Vec<u8>, String, bool), String> {
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

fn refreshed(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| format!("--fresh needs a JSON body: {e}"))?;
    let now = unix_millis(SystemTime::now());
    let object = value.as_object_mut().ok_or("--fresh needs a JSON object body")?;
    object.insert("publish_timestamp".into(), now.into());
    object.insert("event_timestamp".into(), now.into());
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("sign: {problem}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("sign: {problem}");
            ExitCode::FAILURE
        }
    }
}
