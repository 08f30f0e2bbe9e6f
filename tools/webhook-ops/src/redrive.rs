//! `webhook-ops redrive`: re-delivers the events kept in the dead-letter queue, through the same
//! routing and forwarding code as the function, with the deployed function's own settings.
//!
//! Where each letter goes is decided by the function's configuration as Lambda has it now
//! (`GetFunctionConfiguration`), never by the operator's shell: a letter routed with another
//! bus or source than the function's would be delivered somewhere its rules never see, and then
//! deleted. Without the function's settings, redrive refuses before touching the queue.

use clap::Args;
use momento_webhook_receiver::clients;
use momento_webhook_receiver::forward::Delivered;

use crate::Failure;
use crate::dead_letters::{Fate, Options, redrive};
use crate::function::{self, FunctionArgs};

/// Re-delivers every event in the dead-letter queue where the deployed function would send it
/// now (its ROUTES, EVENT_BUS_NAME and EVENT_SOURCE, read from Lambda), and deletes each one
/// delivered. Failures stay in the queue. Signatures and freshness are not checked again: each
/// event was verified when it first arrived.
#[derive(Args, Debug)]
pub struct RedriveArgs {
    /// The dead-letter queue (default: the function's DEAD_LETTER_QUEUE_URL).
    #[arg(long, value_name = "URL")]
    queue_url: Option<String>,
    /// Show what would be redriven, and where; deliver and delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Stop after N messages.
    #[arg(long, value_name = "N")]
    max: Option<usize>,
    #[command(flatten)]
    function: FunctionArgs,
}

pub async fn run(args: RedriveArgs) -> Result<(), Failure> {
    let (sdk, function) =
        function::required(&args.function, "redrive delivers each letter where the deployed function would").await?;
    let delivery = function.delivery()?;
    let queue_url = match (&args.queue_url, function.dead_letter_queue_url()) {
        (Some(url), _) => url.clone(),
        (None, Some(url)) => url.to_owned(),
        (None, None) => {
            return Err(Failure::usage(format!(
                "function {} has no DEAD_LETTER_QUEUE_URL: pass --queue-url",
                function.name
            )));
        }
    };
    eprintln!("routing as function {} has it now: {}", function.name, function::describe_routes(&delivery));
    eprintln!("queue {queue_url}");
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
