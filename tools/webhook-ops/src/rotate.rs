//! `webhook-ops rotate`: the AWS side of a signing-secret rotation, in one step.
//!
//! Momento's `rotateWebhookSecret` takes effect at once. Run `rotate` right after it: the new
//! secret (read from standard input or a hidden prompt, never from the command line) is stored
//! first and the current one kept second (`NEW,OLD`), so events signed with either are accepted;
//! the running function re-reads the secret on the first signature that matches nothing (at most
//! once every 10 s). Later, `rotate --finish` keeps only the new one.
//!
//! A secret is never printed: only a short fingerprint (the first 8 hex characters of its
//! SHA3-256), so two people can compare without revealing it.

use std::io::{IsTerminal, Read};

use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use clap::Args;
use sha3::{Digest, Sha3_256};

use crate::{Failure, StackArgs, aws, stack};

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The Secrets Manager secret the function reads (default: the stack's SigningSecretArn).
    #[arg(long, value_name = "ARN_OR_NAME")]
    secret_id: Option<String>,
    /// Keep only the first (newest) secret, once no event signed with the old one can still
    /// arrive (a minute after the rotation, Momento's freshness window).
    #[arg(long)]
    finish: bool,
    #[command(flatten)]
    stack: StackArgs,
}

pub async fn run(args: RotateArgs) -> Result<(), Failure> {
    let sdk = aws::sdk_config(args.stack.region.as_deref()).await?;
    let secret_id = match &args.secret_id {
        Some(id) => id.clone(),
        None => stack::from_args(&sdk, &args.stack, "pass --secret-id").await?.output("SigningSecretArn")?.to_owned(),
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
    Ok(())
}

/// The secrets in a stored value (`new,old`).
fn secrets(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// A short, non-reversible name for a secret.
pub fn fingerprint(secret: &str) -> String {
    hex::encode(&Sha3_256::digest(secret.as_bytes())[..4])
}

/// What a secret must look like: Momento's secrets are single words.
fn check_new_secret(new: &str) -> Result<(), Failure> {
    if new.is_empty() {
        return Err(Failure::usage("the new secret is empty: paste the secret Momento's rotateWebhookSecret returned"));
    }
    if new.chars().any(|c| c == ',' || c.is_whitespace() || c.is_control()) {
        return Err(Failure::usage(
            "the new secret contains a comma, white space or a control character: paste exactly the secret Momento returned",
        ));
    }
    Ok(())
}

/// The stored list after a rotation to `new`, and what to say about it.
fn rotated(current: &str, new: &str) -> Result<(Vec<String>, String), Failure> {
    check_new_secret(new)?;
    let current = secrets(current);
    if current.first().is_some_and(|first| first == new) {
        return Err(Failure::usage(format!(
            "secret {} is already the first one stored: nothing to rotate (run --finish to drop the old one)",
            fingerprint(new)
        )));
    }
    let mut next = vec![new.to_owned()];
    next.extend(current.first().cloned());
    let mut report = format!(
        "stored the new secret {} first and kept the previous one {} second; the function accepts both and follows \
         within 10 s.",
        fingerprint(new),
        current.first().map(|s| fingerprint(s)).unwrap_or_else(|| "(none)".into())
    );
    if current.len() > 1 {
        let dropped: Vec<String> = current[1..].iter().map(|s| fingerprint(s)).collect();
        report.push_str(&format!(" Dropped the older one(s) {}.", dropped.join(", ")));
    }
    report.push_str(
        " Once no event signed with the old secret can arrive (a minute), run `webhook-ops rotate --finish`.",
    );
    Ok((next, report))
}

/// The stored list after `--finish`.
fn finished(current: &str) -> Result<(Vec<String>, String), Failure> {
    let current = secrets(current);
    match current.as_slice() {
        [] => Err(Failure::usage("the stored secret is empty: run `webhook-ops rotate` with the current secret")),
        [only] => Err(Failure::usage(format!("only one secret ({}) is stored: nothing to finish", fingerprint(only)))),
        [first, rest @ ..] => Ok((
            vec![first.clone()],
            format!(
                "kept only the newest secret {}; dropped {}. Events signed with the old secret are now refused.",
                fingerprint(first),
                rest.iter().map(|s| fingerprint(s)).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// The new secret from standard input (piped) or a hidden prompt; never from the command line,
/// where it would end up in shell history and process listings.
fn read_new_secret() -> Result<String, Failure> {
    let input = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("New signing secret from Momento (input hidden): ")
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
    let answer = client.get_secret_value().secret_id(secret_id).send().await.map_err(|e| {
        Failure::not_done(format!(
            "could not read secret {secret_id}: {}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or("no message")
        ))
    })?;
    answer
        .secret_string()
        .map(str::to_owned)
        .ok_or_else(|| Failure::not_done(format!("secret {secret_id} holds no text")))
}

async fn write(sdk: &SdkConfig, secret_id: &str, value: &str) -> Result<(), Failure> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    client.put_secret_value().secret_id(secret_id).secret_string(value).send().await.map_err(|e| {
        Failure::not_done(format!(
            "could not store the new value of {secret_id}: {}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or("no message")
        ))
    })?;
    Ok(())
}

/// The first (newest) secret stored in `secret_id`: what Momento signs with now.
pub async fn first_secret(sdk: &SdkConfig, secret_id: &str) -> Result<String, Failure> {
    secrets(&read(sdk, secret_id).await?)
        .into_iter()
        .next()
        .ok_or_else(|| Failure::usage(format!("secret {secret_id} is empty")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_puts_the_new_secret_first_and_keeps_only_the_previous_one() {
        let (next, report) = rotated("old", "new").unwrap();
        assert_eq!(next, ["new", "old"]);
        assert!(!report.contains("new,") && !report.contains("old,"), "{report}");
        let (next, report) = rotated("previous, older", "new").unwrap();
        assert_eq!(next, ["new", "previous"]);
        assert!(report.contains(&fingerprint("older")), "{report}");
        let (next, _) = rotated("", "first").unwrap();
        assert_eq!(next, ["first"]);
    }

    #[test]
    fn empty_malformed_or_unchanged_secrets_are_refused() {
        for bad in ["", "a,b", "with space", "tab\tsecret", "two\nlines", "nul\0"] {
            assert_eq!(rotated("old", bad).unwrap_err().code, 2, "{bad:?}");
        }
        assert!(rotated("same,old", "same").unwrap_err().message.contains("already"));
    }

    #[test]
    fn finishing_keeps_only_the_newest() {
        assert_eq!(finished("new, old").unwrap().0, ["new"]);
        assert_eq!(finished("new,old,older").unwrap().0, ["new"]);
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
}
