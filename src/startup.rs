//! What both functions (`momento-webhook` and `momento-bridge`) do before their first event:
//! logging, a panic hook that says why in the log, and the AWS SDK configuration over the
//! compiled-in trust store. A start-up mistake ends the process with [`refuse`]'s exit code.

use std::process::ExitCode;

use aws_config::{BehaviorVersion, SdkConfig};

/// What both functions do first: logging and the panic hook, their configuration
/// from the environment, then the SDK configuration with the configuration's extra CA
/// certificates. A mistake is logged and gives the exit code to end with.
pub async fn begin<C, E: std::fmt::Display>(
    consequence: &'static str,
    from_env: impl FnOnce() -> Result<C, E>,
    extra_ca: impl FnOnce(&C) -> Option<&[u8]>,
) -> Result<(C, SdkConfig), ExitCode> {
    init(consequence);
    let config = from_env().map_err(|error| refuse("invalid configuration", error))?;
    let sdk = sdk(extra_ca(&config)).await?;
    Ok((config, sdk))
}

/// The exit code once Lambda's runtime loop has ended (it only ends on an error of its own).
pub fn stopped(result: Result<(), lambda_runtime::Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}

/// Installs logging, and a panic hook that logs the panic with `consequence` first: the
/// release build aborts on a panic (smaller, no unwinding tables), and Lambda then reports the
/// invocation as failed (the Errors alarms) and starts a fresh instance.
fn init(consequence: &'static str) {
    crate::logging::init();
    std::panic::set_hook(Box::new(move |panic| {
        tracing::error!(%panic, "{consequence}");
        eprintln!("panic: {panic}");
    }));
}

/// Logs why the process will not start and gives its exit code.
pub fn refuse(log: &str, error: impl std::fmt::Display) -> ExitCode {
    tracing::error!(%error, "{log}; refusing to start");
    eprintln!("configuration error: {error}");
    ExitCode::from(2)
}

/// The SDK configuration every client is built from: the compiled-in trust store (see
/// [`crate::tls`]) plus `extra_ca` (`AWS_CA_BUNDLE`), nothing read from the image's certificate
/// files. Refused without a region: Lambda always sets one, and without it every call would fail.
async fn sdk(extra_ca: Option<&[u8]>) -> Result<SdkConfig, ExitCode> {
    let http_client = crate::tls::https_client(extra_ca);
    // A build property (.cargo/config.toml), evaluated only when debug logging is on.
    tracing::debug!(cpu_jitter_entropy = aws_lc_rs::try_fips_cpu_jitter_entropy().is_ok(), "TLS entropy sources");
    let sdk = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client).load().await;
    match sdk.region() {
        Some(_) => Ok(sdk),
        None => Err(refuse(
            "AWS_REGION is not set",
            "AWS_REGION is not set: the AWS SDK needs a region to reach EventBridge and Step Functions",
        )),
    }
}
