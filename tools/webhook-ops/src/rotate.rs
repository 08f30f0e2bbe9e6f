//! `webhook-ops rotate`: stores the webhook's signing secret in Secrets Manager, where the
//! function reads it: the first time (the stack created the secret with a placeholder), and
//! after every rotation in Momento.
//!
//! Momento's `rotateWebhookSecret` takes effect at once. Run `rotate` right after it: the new
//! secret (read from standard input or a hidden prompt, never from the command line) is stored
//! first and the current one kept second (`NEW,OLD`), so events signed with either are accepted.
//! Later, `rotate --finish` keeps only the new one. What each step promises comes from the
//! function's own bounds ([`momento_webhook_receiver::bounds`]).
//!
//! A secret is never printed: only a short fingerprint (the first 8 hex characters of its
//! SHA3-256), so two people can compare without revealing it.

use std::io::{IsTerminal, Read};
use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use clap::Args;
use momento_webhook_receiver::bounds::{SECRET_MIN_READ_INTERVAL, SECRET_REFRESH_AFTER, SECRET_TRUSTED_FOR};
use momento_webhook_receiver::signature::{SecretListError, secret_list};
use sha3::{Digest, Sha3_256};

use crate::stack::{self, StackArgs};
use crate::{Failure, aws};

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The Secrets Manager secret the function reads (default: the stack's SigningSecretArn).
    #[arg(long, value_name = "ARN_OR_NAME")]
    secret_id: Option<String>,
    /// Keep only the first (newest) secret, once no event signed with the old one can still
    /// arrive (a minute after the rotation, Momento's freshness window).
    #[arg(long)]
    finish: bool,
    /// With --finish: wait until every running instance refuses the old secret, then say so.
    #[arg(long, requires = "finish")]
    wait: bool,
    #[command(flatten)]
    stack: StackArgs,
}

pub async fn run(args: RotateArgs) -> Result<(), Failure> {
    let (sdk, secret_id) = match &args.secret_id {
        Some(id) => (aws::sdk_config(args.stack.region.as_deref()).await?, id.clone()),
        None => {
            let (sdk, stack) = stack::required(&args.stack, "pass --secret-id").await?;
            let id = stack.output("SigningSecretArn")?.to_owned();
            (sdk, id)
        }
    };
    let current = read(&sdk, &secret_id).await?;
    let (next, report) = if args.finish {
        finished(&current)?
    } else {
        let new = read_new_secret()?;
        rotated(&current, &new)?
    };
    write(&sdk, &secret_id, &next.join(",")).await?;
    println!("{report}");
    if args.wait {
        tokio::time::sleep(SECRET_TRUSTED_FOR).await;
        println!(
            "{} s have passed: no running instance accepts the old secret any more.",
            SECRET_TRUSTED_FOR.as_secs()
        );
    }
    Ok(())
}

/// The secrets of a stored value (`new,old`); `None` for the stack's placeholder (nothing
/// stored yet). Read by the function's own parser: a value it would refuse is refused here.
fn stored(value: &str) -> Result<Option<Vec<String>>, Failure> {
    match secret_list(value) {
        Ok(secrets) => Ok(Some(secrets.into_iter().map(str::to_owned).collect())),
        Err(SecretListError::NotStoredYet | SecretListError::Empty) => Ok(None),
        Err(error) => Err(Failure::usage(format!(
            "the stored signing secret is a value the function cannot use ({error}); fix it in Secrets Manager"
        ))),
    }
}

/// A short, non-reversible name for a secret.
pub fn fingerprint(secret: &str) -> String {
    hex::encode(&Sha3_256::digest(secret.as_bytes())[..4])
}

/// What a secret must look like: Momento's secrets are single words.
fn check_new_secret(new: &str) -> Result<(), Failure> {
    if new.is_empty() {
        return Err(Failure::usage("the new secret is empty: paste the secret Momento shows for the webhook"));
    }
    if new.chars().any(|c| c == ',' || c.is_whitespace() || c.is_control()) {
        return Err(Failure::usage(
            "the new secret contains a comma, white space or a control character: paste exactly the secret Momento shows",
        ));
    }
    if secret_list(new) != Ok(vec![new]) {
        return Err(Failure::usage("the new secret is not one the function can use: paste the secret Momento shows"));
    }
    Ok(())
}

/// The stored list after storing `new`, and what to say about it.
fn rotated(current: &str, new: &str) -> Result<(Vec<String>, String), Failure> {
    check_new_secret(new)?;
    let Some(current) = stored(current)? else {
        return Ok((
            vec![new.to_owned()],
            format!(
                "stored the signing secret {} (there was none yet). Every instance accepts it from its next event \
                 signed with it, at the latest {} s from now; instances starting from now use it at once.",
                fingerprint(new),
                SECRET_MIN_READ_INTERVAL.as_secs()
            ),
        ));
    };
    if current.first().is_some_and(|first| first == new) {
        return Err(Failure::usage(format!(
            "secret {} is already the first one stored: nothing to rotate (run --finish to drop the old one)",
            fingerprint(new)
        )));
    }
    let mut next = vec![new.to_owned()];
    next.extend(current.first().cloned());
    let mut report = format!(
        "stored the new secret {} first and kept the previous one {} second. Every instance accepts the new one from \
         its next event signed with it, at the latest {} s from now, and still accepts the previous one.",
        fingerprint(new),
        current.first().map(|s| fingerprint(s)).unwrap_or_default(),
        SECRET_MIN_READ_INTERVAL.as_secs()
    );
    if current.len() > 1 {
        let dropped: Vec<String> = current[1..].iter().map(|s| fingerprint(s)).collect();
        report.push_str(&format!(
            " Dropped the older one(s) {}: refused everywhere within {} s.",
            dropped.join(", "),
            SECRET_TRUSTED_FOR.as_secs()
        ));
    }
    report.push_str(
        " Once no event signed with the previous secret can arrive (a minute), run `webhook-ops rotate --finish`.",
    );
    Ok((next, report))
}

/// The stored list after `--finish`.
fn finished(current: &str) -> Result<(Vec<String>, String), Failure> {
    let current = stored(current)?.ok_or_else(|| {
        Failure::usage("no signing secret is stored yet: run `webhook-ops rotate` with the secret Momento shows")
    })?;
    match current.as_slice() {
        [] | [_] => Err(Failure::usage(format!(
            "only one secret ({}) is stored: nothing to finish",
            current.first().map(|s| fingerprint(s)).unwrap_or_default()
        ))),
        [first, rest @ ..] => Ok((
            vec![first.clone()],
            format!(
                "kept only the newest secret {}; dropped {}. Running instances re-read the secret at least every {} s \
                 while they receive events and never trust a read older than {} s: the old secret is refused \
                 everywhere from {} (UTC) at the latest. (--wait waits for it.)",
                fingerprint(first),
                rest.iter().map(|s| fingerprint(s)).collect::<Vec<_>>().join(", "),
                SECRET_REFRESH_AFTER.as_secs(),
                SECRET_TRUSTED_FOR.as_secs(),
                clock_time(SystemTime::now() + SECRET_TRUSTED_FOR)
            ),
        )),
    }
}

/// `HH:MM:SS` of `time`, in UTC.
fn clock_time(time: SystemTime) -> String {
    let text = DateTime::from(time).fmt(Format::DateTime).unwrap_or_default();
    text.get(11..19).unwrap_or(&text).to_owned()
}

/// The new secret from standard input (piped) or a hidden prompt; never from the command line,
/// where it would end up in shell history and process listings.
fn read_new_secret() -> Result<String, Failure> {
    let input = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Signing secret from Momento (input hidden): ")
            .map_err(|e| Failure::usage(format!("could not read the secret: {e}")))?
    } else {
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|e| Failure::usage(format!("could not read the secret from standard input: {e}")))?;
        input
    };
    Ok(input.trim().to_owned())
}

async fn read(sdk: &SdkConfig, secret_id: &str) -> Result<String, Failure> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let answer = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| Failure::not_done(format!("could not read secret {secret_id}: {}", aws::error_text(&e))))?;
    answer
        .secret_string()
        .map(str::to_owned)
        .ok_or_else(|| Failure::not_done(format!("secret {secret_id} holds no text")))
}

async fn write(sdk: &SdkConfig, secret_id: &str, value: &str) -> Result<(), Failure> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    client.put_secret_value().secret_id(secret_id).secret_string(value).send().await.map_err(|e| {
        Failure::not_done(format!("could not store the new value of {secret_id}: {}", aws::error_text(&e)))
    })?;
    Ok(())
}

/// The first (newest) secret stored in `secret_id`: what Momento signs with now.
pub async fn first_secret(sdk: &SdkConfig, secret_id: &str) -> Result<String, Failure> {
    stored(&read(sdk, secret_id).await?)?.and_then(|secrets| secrets.into_iter().next()).ok_or_else(|| {
        Failure::usage(format!(
            "no signing secret is stored in {secret_id} yet: run `webhook-ops rotate` with the secret Momento shows"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use momento_webhook_receiver::signature::PLACEHOLDER_KEY;
    use std::time::Duration;

    #[test]
    fn a_rotation_puts_the_new_secret_first_and_keeps_only_the_previous_one() {
        let (next, report) = rotated("old", "new").unwrap();
        assert_eq!(next, ["new", "old"]);
        assert!(!report.contains("new,") && !report.contains("old,"), "{report}");
        assert!(report.contains("within 10 s") || report.contains("latest 10 s"), "{report}");
        let (next, report) = rotated("previous, older", "new").unwrap();
        assert_eq!(next, ["new", "previous"]);
        assert!(report.contains(&fingerprint("older")) && report.contains("within 60 s"), "{report}");
    }

    #[test]
    fn the_first_secret_replaces_the_stacks_placeholder() {
        let placeholder = format!(r#"{{"{PLACEHOLDER_KEY}":"kq0aPLmN3vB7cD9e"}}"#);
        let (next, report) = rotated(&placeholder, "first").unwrap();
        assert_eq!(next, ["first"], "the placeholder is not kept as an old secret");
        assert!(report.contains("there was none yet"), "{report}");
        assert!(finished(&placeholder).unwrap_err().message.contains("no signing secret is stored yet"));
    }

    #[test]
    fn empty_malformed_or_unchanged_secrets_are_refused() {
        let placeholder = format!(r#"{{"{PLACEHOLDER_KEY}":"x"}}"#);
        for bad in ["", "a,b", "with space", "tab\tsecret", "two\nlines", "nul\0", placeholder.as_str()] {
            assert_eq!(rotated("old", bad).unwrap_err().code, 2, "{bad:?}");
        }
        assert!(rotated("same,old", "same").unwrap_err().message.contains("already"));
        assert!(rotated("a,,b", "new").unwrap_err().message.contains("entry 2 is empty"), "as the function reads it");
    }

    #[test]
    fn finishing_keeps_only_the_newest_and_says_until_when_the_old_one_works() {
        assert_eq!(finished("new, old").unwrap().0, ["new"]);
        let (next, report) = finished("new,old,older").unwrap();
        assert_eq!(next, ["new"]);
        assert!(report.contains("60 s") && report.contains("(UTC) at the latest"), "{report}");
        assert!(!report.contains("now refused"), "{report}");
        assert!(finished("only").is_err());
        assert!(finished(" , ").is_err());
    }

    #[test]
    fn reports_and_errors_never_contain_a_secret() {
        let secret = "s3cr3t-value-123";
        let (_, report) = rotated("old-value-456", secret).unwrap();
        assert!(!report.contains(secret) && !report.contains("old-value-456"), "{report}");
        let (_, report) = finished(&format!("{secret},old-value-456")).unwrap();
        assert!(!report.contains(secret), "{report}");
        let error = rotated(&format!("{secret},x"), secret).unwrap_err().message;
        assert!(!error.contains(secret), "{error}");
        assert_eq!(fingerprint(secret).len(), 8);
    }

    #[test]
    fn clock_times_are_utc_hours_minutes_seconds() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(clock_time(time), "22:13:20");
    }
}
