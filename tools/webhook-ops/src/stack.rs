//! The deployed stack: its outputs (`WebhookUrl`, `SigningSecretArn`, `DeadLetterQueueUrl`, ...)
//! and parameters, looked up once with CloudFormation's `DescribeStacks`. The only place the
//! tools talk to CloudFormation.

use std::collections::HashMap;
use std::path::Path;

use aws_config::SdkConfig;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use momento_webhook_receiver::routing::Pattern;

use crate::{Failure, StackArgs};

/// What the tools need to know about a stack.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    pub name: String,
    pub outputs: HashMap<String, String>,
    pub parameters: HashMap<String, String>,
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

    /// Whether an event for `cache`/`topic` would start the stack's state machine, judged from
    /// the parameters that build its routing table (template.yaml, `ROUTES`).
    pub fn starts_workflow(&self, cache: &str, topic: &str) -> bool {
        let parameter = |key: &str| self.parameters.get(key).map(String::as_str).unwrap_or_default();
        let has_machine = !parameter("StateMachineArn").is_empty() || parameter("CreateExampleStateMachine") == "true";
        has_machine
            && Pattern::new(parameter("StateMachineCachePattern")).matches(cache)
            && Pattern::new(parameter("StateMachineTopicPattern")).matches(topic)
    }
}

/// The stack named by `--stack`, or by `stack_name` in `samconfig.toml` (what `make deploy`
/// saved). `None` when neither names one.
pub fn stack_name(args: &StackArgs, samconfig: &Path) -> Option<String> {
    args.stack.clone().or_else(|| saved_stack_name(&std::fs::read_to_string(samconfig).ok()?))
}

/// `stack_name = "..."` as `sam deploy --guided` writes it.
fn saved_stack_name(samconfig: &str) -> Option<String> {
    samconfig.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "stack_name").then(|| value.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
    })
}

/// Looks the stack up.
pub async fn describe(sdk: &SdkConfig, name: &str) -> Result<Stack, Failure> {
    let client = aws_sdk_cloudformation::Client::new(sdk);
    let answer = client.describe_stacks().stack_name(name).send().await.map_err(|e| {
        Failure::usage(format!(
            "could not read stack {name} ({}: {}); check --stack, --region and your AWS credentials",
            e.code().unwrap_or("error"),
            e.message()
                .map(str::to_owned)
                .unwrap_or_else(|| aws_sdk_cloudformation::error::DisplayErrorContext(&e).to_string())
        ))
    })?;
    let stack = answer.stacks().first().ok_or_else(|| Failure::usage(format!("stack {name} was not found")))?;
    Ok(Stack {
        name: name.to_owned(),
        outputs: stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect(),
        parameters: stack
            .parameters()
            .iter()
            .filter_map(|p| Some((p.parameter_key()?.to_owned(), p.parameter_value()?.to_owned())))
            .collect(),
    })
}

/// The stack from `args` (or samconfig.toml), looked up; a usage error when none is named.
pub async fn from_args(sdk: &SdkConfig, args: &StackArgs, what: &str) -> Result<Stack, Failure> {
    let name = stack_name(args, Path::new("samconfig.toml")).ok_or_else(|| {
        Failure::usage(format!(
            "no stack: pass --stack (or run from the project, where samconfig.toml names it), or {what}"
        ))
    })?;
    describe(sdk, &name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_name_comes_from_the_argument_or_samconfig() {
        let saved = "version = 0.1\n[default.deploy.parameters]\nstack_name = \"hooks-prod\"\nresolve_s3 = true\n";
        assert_eq!(saved_stack_name(saved).as_deref(), Some("hooks-prod"));
        assert_eq!(saved_stack_name("[default.deploy.parameters]\nresolve_s3 = true\n"), None);
        let args = StackArgs { stack: Some("explicit".into()), region: None };
        assert_eq!(stack_name(&args, Path::new("/nonexistent")).as_deref(), Some("explicit"));
        assert_eq!(stack_name(&StackArgs::default(), Path::new("/nonexistent")), None);
    }

    #[test]
    fn a_workflow_start_is_predicted_from_the_routing_parameters() {
        let stack = |machine: &str, cache: &str, topic: &str| Stack {
            parameters: [
                ("StateMachineArn", machine),
                ("CreateExampleStateMachine", "false"),
                ("StateMachineCachePattern", cache),
                ("StateMachineTopicPattern", topic),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            ..Default::default()
        };
        let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:m";
        assert!(!stack(arn, "*", "workflow-*").starts_workflow("smoke", "smoke-test"));
        assert!(stack(arn, "*", "*").starts_workflow("smoke", "smoke-test"));
        assert!(stack(arn, "*", "smoke-*").starts_workflow("smoke", "smoke-test"));
        assert!(!stack("", "*", "*").starts_workflow("smoke", "smoke-test"), "no state machine, no workflow");
    }
}
