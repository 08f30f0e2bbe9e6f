//! The AWS configuration the commands share: the usual sources (environment, profile, SSO),
//! with `--region` on top.

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::Failure;

/// Loads the AWS configuration; refuses to go on without a region.
pub async fn sdk_config(region: Option<&str>) -> Result<SdkConfig, Failure> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
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
