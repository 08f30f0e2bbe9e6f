//! `webhook-ops`: the operator's tools for a deployed (or local) Momento webhook receiver, in one
//! command with shared options.
//!
//! - `smoke`: is my webhook working? Signs a fresh test event as Momento does, sends it, and
//!   says in words what happened.
//! - `rotate`: the AWS side of a secret rotation in one step (and `--finish` later).
//! - `redrive`: put dead-lettered events back once the cause is fixed.
//! - `sign`: sign a body or an event file, to craft test requests.
//! - `bridge`: each topic of the topic bridge at a glance, and whether all are being read.
//!
//! Exit status: 0 when the job is done, 1 when it is not (an event not delivered, messages still
//! failing), 2 for a usage or configuration error.

mod alarms;
mod aws;
mod bridge;
mod dead_letters;
mod function;
mod function_url;
mod redrive;
mod rotate;
mod sign;
mod smoke;
mod stack;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "webhook-ops",
    version,
    about = "Operate a Momento webhook receiver: smoke-test it, rotate its secret, redrive, sign."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send a signed test event and say what happened (exit 0 only when it was delivered).
    Smoke(smoke::SmokeArgs),
    /// Store the webhook's signing secret: the first time, and after rotating it in Momento (read
    /// from standard input or a prompt, never from the command line).
    Rotate(rotate::RotateArgs),
    /// Re-deliver the events kept in the dead-letter queue, where the deployed function would
    /// send them now.
    Redrive(redrive::RedriveArgs),
    /// Print the momento-signature of a body, or a whole signed Function URL event.
    Sign(sign::SignArgs),
    /// Each topic of the topic bridge: its position, owner and successor, how far behind, and the
    /// last hour's counts (exit 1 when a topic is not being read).
    Bridge(bridge::BridgeArgs),
}

/// A failure of a command: its exit status and what to tell the user.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Exit 1: the job was not done.
    pub fn not_done(message: impl Into<String>) -> Self {
        Self { code: 1, message: message.into() }
    }

    /// Exit 2: a usage or configuration error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self { code: 2, message: message.into() }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Smoke(args) => smoke::run(args).await,
        Command::Rotate(args) => rotate::run(args).await,
        Command::Redrive(args) => redrive::run(args).await,
        Command::Sign(args) => sign::run(args),
        Command::Bridge(args) => bridge::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("webhook-ops: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
