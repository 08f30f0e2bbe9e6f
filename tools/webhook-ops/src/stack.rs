//! The deployed stack: which one (`--stack`, or the one `sam deploy` saved in samconfig.toml for
//! the configuration environment), in which region, and its outputs (`WebhookUrl`,
//! `FunctionName`, `SigningSecretArn`, `DeadLetterQueueUrl`, ...), looked up once with
//! CloudFormation's `DescribeStacks`. The only place the tools talk to CloudFormation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aws_config::SdkConfig;
use clap::Args;

use crate::{Failure, aws};

/// Where the deployed stack and its AWS account are: shared by the commands that look things up.
#[derive(Args, Debug, Clone, Default)]
pub struct StackArgs {
    /// The CloudFormation stack `make deploy` created (default: `stack_name` in samconfig.toml).
    #[arg(long, value_name = "NAME")]
    pub stack: Option<String>,
    /// The AWS region (default: the stack's `region` in samconfig.toml, else AWS_REGION or your
    /// AWS profile's).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// The samconfig.toml environment the stack was deployed with (as `sam deploy --config-env`).
    #[arg(long, value_name = "ENV", default_value = "default")]
    pub config_env: String,
    /// The SAM configuration file.
    #[arg(long, value_name = "FILE", default_value = "samconfig.toml")]
    pub config_file: PathBuf,
}

/// A stack to look up: its name, the region to look in (when known), and where both came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub name: String,
    pub region: Option<String>,
    pub source: String,
}

/// The stack `args` name, or `None` when neither `--stack` nor the SAM configuration does.
pub fn locate(args: &StackArgs) -> Result<Option<Location>, Failure> {
    if let Some(name) = &args.stack {
        return Ok(Some(Location { name: name.clone(), region: args.region.clone(), source: "--stack".into() }));
    }
    let Some(saved) = saved_deployment(&args.config_file, &args.config_env)? else {
        return Ok(None);
    };
    Ok(Some(Location {
        name: saved.stack_name,
        region: args.region.clone().or(saved.region),
        source: format!("{} [{}]", args.config_file.display(), args.config_env),
    }))
}

/// What `sam deploy` saved for one configuration environment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SavedDeployment {
    stack_name: String,
    region: Option<String>,
}

/// `stack_name` and `region` of `[<env>.deploy.parameters]` (the region may also be only in
/// `[<env>.global.parameters]`, where guided deploys save it too). `None` when there is no file,
/// or the default environment saved no stack; an error when an environment asked for is missing.
fn saved_deployment(path: &Path, env: &str) -> Result<Option<SavedDeployment>, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::usage(format!("{}: {e}", path.display()))),
    };
    let config: toml::Table =
        text.parse().map_err(|e| Failure::usage(format!("{} is not valid TOML: {e}", path.display())))?;
    let section = |command: &str| config.get(env)?.get(command)?.get("parameters")?.as_table();
    let text_of = |command: &str, key: &str| section(command)?.get(key)?.as_str().map(str::to_owned);
    match text_of("deploy", "stack_name") {
        Some(stack_name) => Ok(Some(SavedDeployment {
            stack_name,
            region: text_of("deploy", "region").or_else(|| text_of("global", "region")),
        })),
        None if env == "default" => Ok(None),
        None => Err(Failure::usage(format!(
            "{} has no stack_name in [{env}.deploy.parameters]: check --config-env",
            path.display()
        ))),
    }
}

/// What the tools need to know about a stack.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    pub name: String,
    pub outputs: HashMap<String, String>,
}

impl Stack {
    /// An output the template always has; its absence means this is not our stack.
    pub fn output(&self, key: &str) -> Result<&str, Failure> {
        self.outputs.get(key).map(String::as_str).ok_or_else(|| {
            Failure::usage(format!(
                "stack {} has no output {key}: is it a momento-webhook-receiver stack (template.yaml)?",
                self.name
            ))
        })
    }
}

/// The AWS configuration for `location`'s region (or the usual one), and the stack looked up.
pub async fn describe(location: &Location) -> Result<(SdkConfig, Stack), Failure> {
    let sdk = aws::sdk_config(location.region.as_deref()).await?;
    let name = &location.name;
    let client = aws_sdk_cloudformation::Client::new(&sdk);
    let answer = client.describe_stacks().stack_name(name).send().await.map_err(|e| {
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        Failure::usage(format!(
            "could not read stack {name} (from {}) in {region} ({}); check --stack, --region and your AWS credentials",
            location.source,
            aws::error_text(&e)
        ))
    })?;
    let stack = answer.stacks().first().ok_or_else(|| Failure::usage(format!("stack {name} was not found")))?;
    let outputs = stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect();
    Ok((sdk, Stack { name: name.clone(), outputs }))
}

/// The stack `args` name, looked up; a usage error saying `otherwise` when none is named.
pub async fn required(args: &StackArgs, otherwise: &str) -> Result<(SdkConfig, Stack), Failure> {
    let location = locate(args)?.ok_or_else(|| {
        Failure::usage(format!(
            "no stack: pass --stack (or run from the project, where samconfig.toml names it), or {otherwise}"
        ))
    })?;
    describe(&location).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(text: &str, env: &str) -> Result<Option<SavedDeployment>, Failure> {
        static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("samconfig-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("samconfig.toml");
        std::fs::write(&path, text).unwrap();
        saved_deployment(&path, env)
    }

    /// As `sam deploy --guided` writes it, with a second environment whose stack is another.
    const GUIDED: &str = r#"version = 0.1
[default.global.parameters]
beta_features = true
region = "eu-west-1"

[default.deploy.parameters]
capabilities = "CAPABILITY_IAM"
confirm_changeset = true
resolve_s3 = true
stack_name = "hooks-prod"
s3_prefix = "hooks-prod"
region = "eu-west-1"
parameter_overrides = "EventBusName=\"default\" ExistingSigningSecretArn=\"\""

[staging.deploy.parameters]
stack_name = "hooks-staging"
region = "us-east-2"
"#;

    #[test]
    fn the_stack_and_its_region_come_from_the_environment_asked_for() {
        let prod = saved(GUIDED, "default").unwrap().unwrap();
        assert_eq!(prod, SavedDeployment { stack_name: "hooks-prod".into(), region: Some("eu-west-1".into()) });
        let staging = saved(GUIDED, "staging").unwrap().unwrap();
        assert_eq!(staging, SavedDeployment { stack_name: "hooks-staging".into(), region: Some("us-east-2".into()) });
        assert!(saved(GUIDED, "qa").unwrap_err().message.contains("[qa.deploy.parameters]"));
        // stack_name in another section, or in a comment, is not this environment's.
        let elsewhere = "[staging.deploy.parameters]\nstack_name = \"x\"\n# stack_name = \"y\"\n";
        assert_eq!(saved(elsewhere, "default").unwrap(), None);
        let global_region =
            "[default.global.parameters]\nregion = \"ap-south-1\"\n[default.deploy.parameters]\nstack_name = \"s\"\n";
        assert_eq!(saved(global_region, "default").unwrap().unwrap().region.as_deref(), Some("ap-south-1"));
        assert!(saved("stack_name = ", "default").unwrap_err().message.contains("not valid TOML"));
    }

    #[test]
    fn an_explicit_stack_or_region_wins_and_no_file_is_no_stack() {
        let args = StackArgs {
            stack: Some("explicit".into()),
            region: Some("us-west-2".into()),
            config_env: "default".into(),
            config_file: "/nonexistent/samconfig.toml".into(),
        };
        let location = locate(&args).unwrap().unwrap();
        assert_eq!((location.name.as_str(), location.region.as_deref()), ("explicit", Some("us-west-2")));
        assert_eq!(locate(&StackArgs { stack: None, ..args }).unwrap(), None);
    }
}
