//! `redrive`: re-delivers the events kept in the dead-letter queue, from a workstation.
//!
//! Uses the same routing settings as the function (`ROUTES`, `EVENT_BUS_NAME`, `EVENT_SOURCE`)
//! and the usual AWS settings (`AWS_PROFILE`, `AWS_REGION`, ...).

use std::process::ExitCode;

use momento_webhook_receiver::clients;
use momento_webhook_receiver::config::{DEAD_LETTER_QUEUE_URL, DeliveryConfig};
use momento_webhook_receiver::forward::Delivered;
use momento_webhook_receiver::redrive::{Fate, Options, redrive};

const USAGE: &str = "usage: redrive [--queue-url URL] [--dry-run] [--max N]

Re-delivers every event in the dead-letter queue through the current routing table and deletes
each one that was delivered. Failures stay in the queue. Signatures and freshness are not
checked again: each event was verified when it first arrived.

  --queue-url URL  the dead-letter queue (default: $DEAD_LETTER_QUEUE_URL)
  --dry-run        show what would be redriven; deliver and delete nothing
  --max N          stop after N messages

Exit code: 0 when nothing is left failing, 1 when some messages are still failing, 2 on a usage
or configuration error.";

fn parse_args() -> Result<(Option<String>, Options), String> {
    let mut queue_url = None;
    let mut options = Options { dry_run: false, max: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--queue-url" => queue_url = Some(args.next().ok_or("--queue-url needs a URL")?),
            "--dry-run" => options.dry_run = true,
            "--max" => {
                let n = args.next().ok_or("--max needs a number")?;
                options.max = Some(n.parse().map_err(|_| format!("--max: {n:?} is not a whole number"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((queue_url, options))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (queue_url, options) = match parse_args() {
        Ok(parsed) => parsed,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("redrive: {problem}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(queue_url) = queue_url.or_else(|| std::env::var(DEAD_LETTER_QUEUE_URL).ok()).filter(|u| !u.is_empty())
    else {
        eprintln!("redrive: no queue: pass --queue-url or set {DEAD_LETTER_QUEUE_URL}\n\n{USAGE}");
        return ExitCode::from(2);
    };
    let delivery = match DeliveryConfig::from_env() {
        Ok(delivery) => delivery,
        Err(error) => {
            eprintln!("redrive: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let sdk = aws_config::load_from_env().await;
    if sdk.region().is_none() {
        eprintln!("redrive: no AWS region: set AWS_REGION (or a region in your AWS profile)");
        return ExitCode::from(2);
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let forwarder = clients::forwarder(&sdk, &delivery.event_source, &delivery.routes);
    if options.dry_run {
        eprintln!("dry run: nothing will be delivered or deleted");
    }
    let result = redrive(&sqs, &queue_url, &delivery.routes, &forwarder, options, |n, fate| match fate {
        Fate::Redriven { label, delivered } => eprintln!("[{n}] redriven {label} -> {}", describe(delivered)),
        Fate::DuplicateRemoved { label } => {
            eprintln!("[{n}] removed duplicate of {label} (already redriven in this run)")
        }
        Fate::WouldRedrive { label, target } => eprintln!("[{n}] would redrive {label} -> {target}"),
        Fate::StillFailing { label, reason } => eprintln!("[{n}] still failing {label}: {reason}"),
    })
    .await;
    match result {
        Ok(summary) => {
            println!("{}", summary.print_line(options.dry_run));
            for (label, reason) in &summary.still_failing {
                println!("  {label}: {reason}");
            }
            if summary.still_failing.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(error) => {
            eprintln!("redrive: could not read the queue {queue_url}: {error}");
            ExitCode::from(2)
        }
    }
}

fn describe(delivered: &Delivered) -> String {
    match delivered {
        Delivered::EventBridge { event_id } => format!("eventbridge event {event_id}"),
        Delivered::StepFunctions { execution_arn } => format!("stepfunctions {execution_arn}"),
        Delivered::AlreadyStarted { execution_arn } => {
            format!("stepfunctions {execution_arn} (already started earlier)")
        }
    }
}
