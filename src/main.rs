//! The Lambda function: wiring only. Configuration, AWS clients and the signing secret are
//! set up once per cold start; every request then goes to
//! [`Receiver::handle`](momento_webhook_receiver::receiver::Receiver::handle).

use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use lambda_http::{Request, run, service_fn};
use momento_webhook_receiver::config::{ALLOW_UNSIGNED_WEBHOOKS, Config, MOMENTO_SIGNING_SECRET_ID, Signing};
use momento_webhook_receiver::receiver::StartUp;
use momento_webhook_receiver::{clients, startup};

// One request at a time per instance: a single-threaded runtime starts faster and uses less
// memory than a pool of worker threads that would sit idle.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // A first request queued behind the start-up has been waiting at least since here.
    let process_started = Instant::now();
    let started = startup::begin(
        "the function panicked; this instance stops and Lambda starts a new one",
        Config::from_env,
        |config| config.extra_ca_certificates.as_deref(),
    );
    let (config, sdk) = match started.await {
        Ok(started) => started,
        Err(refused) => return refused,
    };
    if matches!(config.signing, Signing::Unsigned) {
        tracing::warn!(
            "{ALLOW_UNSIGNED_WEBHOOKS}=true: signatures are NOT checked; anyone who knows the URL can publish events"
        );
    }
    let receiver = match clients::receiver(&config, &sdk).await {
        Ok(receiver) => receiver.with_cold_start(StartUp { process_started, ready: Instant::now() }),
        Err(error) => {
            return startup::refuse(
                &format!("{MOMENTO_SIGNING_SECRET_ID}: could not read the signing secret"),
                format!("{MOMENTO_SIGNING_SECRET_ID}: {error}"),
            );
        }
    };

    let receiver = &receiver;
    startup::stopped(
        run(service_fn(move |request: Request| async move {
            Ok::<_, std::convert::Infallible>(receiver.handle(request, SystemTime::now()).await)
        }))
        .await,
    )
}
