//! The Lambda function: wiring only. Configuration, AWS clients and the signing secret are
//! set up once per cold start; every request then goes to
//! [`Receiver::handle`](momento_webhook_receiver::receiver::Receiver::handle).

use std::process::ExitCode;
use std::time::SystemTime;

use lambda_http::{Error, Request, run, service_fn};
use momento_webhook_receiver::clients;
use momento_webhook_receiver::config::{ALLOW_UNSIGNED_WEBHOOKS, Config, MOMENTO_SIGNING_SECRET_ID, Signing};

#[tokio::main]
async fn main() -> ExitCode {
    lambda_http::tracing::init_default_subscriber();

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
    let sdk = aws_config::load_from_env().await;
    if sdk.region().is_none() {
        // Lambda always sets it; without it every delivery would fail, so say so now.
        tracing::error!("AWS_REGION is not set; refusing to start");
        eprintln!(
            "configuration error: AWS_REGION is not set: the AWS SDK needs a region to reach EventBridge and Step Functions"
        );
        return ExitCode::from(2);
    }
    let receiver = match clients::receiver(&config, &sdk).await {
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
