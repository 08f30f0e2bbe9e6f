//! The Lambda function: wiring only. Configuration, AWS clients and the signing secret are
//! set up once per cold start; every request then goes to
//! [`Receiver::handle`](momento_webhook_receiver::receiver::Receiver::handle).

use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use aws_config::BehaviorVersion;
use lambda_http::{Error, Request, run, service_fn};
use momento_webhook_receiver::config::{ALLOW_UNSIGNED_WEBHOOKS, Config, MOMENTO_SIGNING_SECRET_ID, Signing};
use momento_webhook_receiver::{clients, tls};

// One request at a time per instance: a single-threaded runtime starts faster and uses less
// memory than a pool of worker threads that would sit idle.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Lambda starts the process while the first request waits: its answer deadline starts here.
    let process_started = Instant::now();
    momento_webhook_receiver::logging::init();
    // The release build aborts on a panic (smaller, no unwinding tables): say why first, in the
    // function's log. Lambda then reports the invocation as failed (the Errors and Url5xxCount
    // alarms) and starts a fresh instance.
    std::panic::set_hook(Box::new(|panic| {
        tracing::error!(%panic, "the function panicked; this instance stops and Lambda starts a new one");
        eprintln!("panic: {panic}");
    }));

    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "invalid configuration; refusing to start");
            eprintln!("configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    if matches!(config.signing, Signing::Unsigned) {
        tracing::warn!(
            "{ALLOW_UNSIGNED_WEBHOOKS}=true: signatures are NOT checked; anyone who knows the URL can publish events"
        );
    }
    // The compiled-in trust store (see `tls`): nothing read from the image's certificate files.
    let http_client = tls::https_client(config.extra_ca_certificates.as_deref());
    // A build property (.cargo/config.toml), evaluated only when debug logging is on.
    tracing::debug!(cpu_jitter_entropy = aws_lc_rs::try_fips_cpu_jitter_entropy().is_ok(), "TLS entropy sources");
    let sdk = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client).load().await;
    if sdk.region().is_none() {
        // Lambda always sets it; without it every delivery would fail, so say so now.
        tracing::error!("AWS_REGION is not set; refusing to start");
        eprintln!(
            "configuration error: AWS_REGION is not set: the AWS SDK needs a region to reach EventBridge and Step Functions"
        );
        return ExitCode::from(2);
    }
    let receiver = match clients::receiver(&config, &sdk, process_started).await {
        Ok(receiver) => receiver,
        Err(error) => {
            tracing::error!(%error, "{MOMENTO_SIGNING_SECRET_ID}: could not read the signing secret; refusing to start");
            eprintln!("configuration error: {MOMENTO_SIGNING_SECRET_ID}: {error}");
            return ExitCode::from(2);
        }
    };

    let receiver = &receiver;
    let result: Result<(), Error> = run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(receiver.handle(request, SystemTime::now()).await)
    }))
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}
