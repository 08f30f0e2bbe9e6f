//! `webhook-ops redrive`: re-delivers the events kept in the dead-letter queue, through the same
//! routing and forwarding code as the function.
//!
//! The routing settings are the function's (`ROUTES`, `EVENT_BUS_NAME`, `EVENT_SOURCE`, from the
//! environment) and the AWS settings the usual ones (`AWS_PROFILE`, `AWS_REGION`, ...).

use crate::dead_letters::{Fate, Options, redrive};
use clap::Args;
use momento_webhook_receiver::clients;
use momento_webhook_receiver::config::{DEAD_LETTER_QUEUE_URL, DeliveryConfig};
use momento_webhook_receiver::forward::Delivered;

use crate::{Failure, StackArgs, aws, stack};

/// Re-delivers every event in the dead-letter queue through the current routing table ($ROUTES,
/// $EVENT_BUS_NAME, $EVENT_SOURCE, as the function has them) and deletes each one delivered.
/// Failures stay in the queue. Signatures and freshness are not checked again: each event was
/// verified when it first arrived.
#[derive(Args, Debug)]
pub struct RedriveArgs {
    /// The dead-letter queue (default: $DEAD_LETTER_QUEUE_URL, or the stack's DeadLetterQueueUrl).
    #[arg(long, value_name = "URL")]
    queue_url: Option<String>,
    /// Show what would be redriven; deliver and delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Stop after N messages.
    #[arg(long, value_name = "N")]
    max: Option<usize>,
    #[command(flatten)]
    stack: StackArgs,
}

pub async fn run(args: RedriveArgs) -> Result<(), Failure> {
    let delivery = DeliveryConfig::from_env().map_err(|e| Failure::usage(format!("configuration error: {e}")))?;
    let queue_url = args.queue_url.or_else(|| std::env::var(DEAD_LETTER_QUEUE_URL).ok()).filter(|u| !u.is_empty());
    let no_queue = format!("no queue: pass --queue-url, set {DEAD_LETTER_QUEUE_URL}, or name the stack with --stack");
    if queue_url.is_none() && stack::stack_name(&args.stack, std::path::Path::new("samconfig.toml")).is_none() {
        return Err(Failure::usage(no_queue));
    }
    let sdk = aws::sdk_config(args.stack.region.as_deref()).await?;
    let queue_url = match queue_url {
        Some(url) => url,
        None => stack::from_args(&sdk, &args.stack, &no_queue).await?.output("DeadLetterQueueUrl")?.to_owned(),
    };
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let forwarder = clients::forwarder(&sdk, &delivery.event_source, &delivery.routes);
    let options = Options { dry_run: args.dry_run, max: args.max };
    if options.dry_run {
        eprintln!("dry run: nothing will be delivered or deleted");
    }
    let summary = redrive(&sqs, &queue_url, &delivery.routes, &forwarder, options, |n, fate| match fate {
        Fate::Redriven { label, delivered } => eprintln!("[{n}] redriven {label} -> {}", describe(delivered)),
        Fate::DuplicateRemoved { label } => {
            eprintln!("[{n}] removed duplicate of {label} (already redriven in this run)")
        }
        Fate::WouldRedrive { label, target } => eprintln!("[{n}] would redrive {label} -> {target}"),
        Fate::StillFailing { label, reason } => eprintln!("[{n}] still failing {label}: {reason}"),
    })
    .await
    .map_err(|error| Failure::usage(format!("could not read the queue {queue_url}: {error}")))?;
    println!("{}", summary.print_line(options.dry_run));
    for (label, reason) in &summary.still_failing {
        println!("  {label}: {reason}");
    }
    if summary.still_failing.is_empty() {
        Ok(())
    } else {
        Err(Failure::not_done(format!(
            "{} messages are still failing and stay in the queue",
            summary.still_failing.len()
        )))
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
