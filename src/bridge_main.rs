//! The topic bridge's Lambda function (see [`momento_webhook_receiver::bridge`]): wiring only.
//! Each scheduled invocation reads the configured topics until shortly before its deadline, then
//! hands them to the next invocation. Outside Lambda (no `AWS_LAMBDA_RUNTIME_API`), one run of
//! `BRIDGE_RUN_SECONDS`, stopped early by Ctrl-C (the calls in flight are finished and the
//! position stored, as at the end of a run), for local use.

use std::process::ExitCode;
use tokio::time::Instant;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use momento_webhook_receiver::bridge::config::BridgeConfig;
use momento_webhook_receiver::bridge::{Run, TopicReport};
use momento_webhook_receiver::{clients, startup};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let started = startup::begin(
        "the bridge panicked; this run stops and the next one resumes from the checkpoints",
        BridgeConfig::from_env,
        |config| config.extra_ca_certificates.as_deref(),
    );
    let (config, sdk) = match started.await {
        Ok(started) => started,
        Err(refused) => return refused,
    };
    let bridge = match clients::bridge(&config, &sdk).await {
        Ok(bridge) => bridge,
        Err(error) => return startup::refuse("could not set up the Momento client", error),
    };
    let bridge = &bridge;

    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        let interrupt = tokio_util::sync::CancellationToken::new();
        let on_ctrl_c = interrupt.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("interrupted: finishing the calls in flight and storing the positions");
                on_ctrl_c.cancel();
            }
        });
        let run = Run::until(Instant::now() + config.local_run).interrupted_by(interrupt);
        return match summarise(&bridge.run(&run).await) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        };
    }

    startup::stopped(
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
            let run = Run::of_invocation(&event.context.request_id, event.context.deadline);
            summarise(&bridge.run(&run).await).map_err(Error::from)
        }))
        .await,
    )
}

/// The run's report; an error (the invocation fails, and the bridge's Errors alarm fires) when
/// a topic could not be read at all.
fn summarise(reports: &[TopicReport]) -> Result<Value, String> {
    let summary = json!({ "topics": reports });
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| r.ended.failed())
        .map(|r| format!("{} ({})", r.topic, <&str>::from(r.ended)))
        .collect();
    match failed.is_empty() {
        true => Ok(summary),
        false => Err(format!("topics not read: {}; see the log for why. {summary}", failed.join(", "))),
    }
}
