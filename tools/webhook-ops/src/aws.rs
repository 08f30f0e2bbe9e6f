//! The AWS configuration the commands share: the usual sources (environment, profile, SSO),
//! with a region on top when one is known, and the function's trust store (the AWS roots, plus
//! `AWS_CA_BUNDLE` behind a corporate proxy); and the one way the tools word an AWS error.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use momento_webhook_receiver::config::extra_ca_certificates;
use momento_webhook_receiver::remote_error::RemoteError;
use momento_webhook_receiver::tls;

use crate::Failure;

/// Loads the AWS configuration; refuses to go on without a region.
pub async fn sdk_config(region: Option<&str>) -> Result<SdkConfig, Failure> {
    let extra = extra_ca_certificates(&|name: &str| std::env::var(name).ok())
        .map_err(|e| Failure::usage(format!("configuration error: {e}")))?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(tls::https_client(extra.as_deref()));
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(Failure::usage(
            "no AWS region: pass --region, or set AWS_REGION (or a region in your AWS profile)",
        ));
    }
    Ok(sdk)
}

/// `Code: message` of any SDK error (the function's own classification, so a time-out or a
/// refused connection is named as such).
pub fn error_text<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    RemoteError::from_sdk(error).to_string()
}
