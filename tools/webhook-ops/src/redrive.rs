//! `webhook-ops redrive`: re-delivers the events kept in the dead-letter queue, through the same
//! routing and forwarding code as the function, with the deployed function's own settings.
//!
//! Where each letter goes is decided by the function's configuration as Lambda has it now
//! (`GetFunctionConfiguration`), never by the operator's shell: a letter routed with another
//! bus or source than the function's would be delivered somewhere its rules never see, and then
//! deleted. Without the function's settings, redrive refuses before touching the queue.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use momento_webhook_receiver::clients;

use crate::Failure;
use crate::dead_letters::{Options, Progress, Summary, redrive};
use crate::function::{self, FunctionArgs};

/// Re-delivers every event in the dead-letter queue where the deployed function would send it
/// now (its ROUTES, EVENT_BUS_NAME and EVENT_SOURCE, read from Lambda), and deletes each one
/// delivered. Failures stay in the queue, visible again when the run ends. Signatures and
/// freshness are not checked again: each event was verified when it first arrived.
#[derive(Args, Debug)]
pub struct RedriveArgs {
    /// The dead-letter queue (default: the function's DEAD_LETTER_QUEUE_URL).
    #[arg(long, value_name = "URL")]
    queue_url: Option<String>,
    /// Show what would be redriven, and where; deliver and delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Stop after N letters.
    #[arg(long, value_name = "N")]
    max: Option<usize>,
    /// Deliver at most N letters a second, so that the redrive does not throttle the target that
    /// just recovered (default: as fast as the target takes them).
    #[arg(long, value_name = "N")]
    rate: Option<f64>,
    /// How long each letter received stays hidden from other readers of the queue (longer than a
    /// delivery takes: 15 s at most); those kept are hidden again before it ends, and made
    /// visible when the run ends.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    hide_for: u64,
    #[command(flatten)]
    function: FunctionArgs,
}

/// A line of progress at most this often when standard error is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How many letters still failing are named one by one at the end (all are counted by reason).
const NAMED: usize = 20;

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
    if args.rate.is_some_and(|rate| rate <= 0.0 || !rate.is_finite()) || args.hide_for == 0 {
        return Err(Failure::usage("--rate must be a positive number, --hide-for at least 1"));
    }
    eprintln!("routing as function {} has it now: {}", function.name, function::describe_routes(&delivery));
    eprintln!("queue {queue_url}");
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let forwarder = clients::redrive_forwarder(&sdk, &delivery.event_source, &delivery.routes);
    let options =
        Options { dry_run: args.dry_run, max: args.max, rate: args.rate, hide_for: Duration::from_secs(args.hide_for) };
    if options.dry_run {
        eprintln!("dry run: nothing will be delivered or deleted");
    }
    let started = Instant::now();
    let mut shown = Shown::new(std::io::stderr().is_terminal());
    let stop = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let summary = redrive(&sqs, &queue_url, &delivery.routes, &forwarder, options, stop, |progress| {
        shown.show(&progress, started)
    })
    .await;
    shown.finish();
    let elapsed = started.elapsed();
    let rate = summary.handled() as f64 / elapsed.as_secs_f64().max(0.001);
    println!("{} in {:.1} s ({rate:.0} letters a second)", summary.print_line(options.dry_run), elapsed.as_secs_f64());
    for (target, count) in &summary.would_redrive_to {
        println!("  would redrive {count} to {target}");
    }
    print!("{}", failing(&summary));
    if summary.not_released > 0 {
        println!(
            "  {} letters kept could not be made visible again: they show when their hiding ends",
            summary.not_released
        );
    }
    match (&summary.stopped, summary.all_done()) {
        (_, true) => Ok(()),
        (Some(stopped), _) => Err(Failure::not_done(format!("{stopped}; run it again to go on"))),
        (None, false) => Err(Failure::not_done(format!(
            "{} letters are still failing and stay in the queue",
            summary.still_failing.len()
        ))),
    }
}

/// The letters still failing: counted by reason, the first few named.
fn failing(summary: &Summary) -> String {
    let mut by_reason: Vec<(&str, usize)> = Vec::new();
    for (_, reason) in &summary.still_failing {
        match by_reason.iter_mut().find(|(r, _)| r == reason) {
            Some((_, count)) => *count += 1,
            None => by_reason.push((reason, 1)),
        }
    }
    let mut text = String::new();
    for (reason, count) in &by_reason {
        text.push_str(&format!("  {count} still failing: {reason}\n"));
    }
    for (label, reason) in summary.still_failing.iter().take(NAMED) {
        text.push_str(&format!("    {label}: {reason}\n"));
    }
    if summary.still_failing.len() > NAMED {
        text.push_str(&format!("    ... and {} more\n", summary.still_failing.len() - NAMED));
    }
    text
}

/// Progress as the operator sees it: a bar on a terminal, a line every few seconds otherwise.
struct Shown {
    bar: Option<ProgressBar>,
    printed_at: Option<Instant>,
}

impl Shown {
    fn new(terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template("{bar:40} {pos}/{len} letters, {per_sec}, {eta} left  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self { bar, printed_at: None }
    }

    fn show(&mut self, progress: &Progress<'_>, started: Instant) {
        let Progress { summary, left } = progress;
        let handled = summary.handled() as u64;
        let counts = format!(
            "redriven {}, still failing {}{}",
            summary.redriven,
            summary.still_failing.len(),
            match summary.would_redrive {
                0 => String::new(),
                n => format!(", would redrive {n}"),
            }
        );
        match &self.bar {
            Some(bar) => {
                // The queue's count includes the letters kept (hidden) so far.
                let kept = (summary.still_failing.len() + summary.would_redrive) as u64;
                bar.set_length(handled + left.unwrap_or(0).saturating_sub(kept));
                bar.set_position(handled);
                bar.set_message(counts);
            }
            None => {
                if self.printed_at.is_some_and(|at| at.elapsed() < PLAIN_PROGRESS_EVERY) {
                    return;
                }
                self.printed_at = Some(Instant::now());
                let rate = handled as f64 / started.elapsed().as_secs_f64().max(0.001);
                let left = left.map_or(String::new(), |left| format!(", about {left} in the queue"));
                eprintln!("{handled} letters: {counts} ({rate:.0} a second{left})");
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
