//! The deployed function's own configuration, read with Lambda's `GetFunctionConfiguration`:
//! where it sends each event now (its `ROUTES`, `EVENT_BUS_NAME`, `EVENT_SOURCE`) and its
//! dead-letter queue. The tools act as the function would, never on the operator's shell.

use std::collections::HashMap;

use aws_config::SdkConfig;
use clap::Args;
use momento_webhook_receiver::config::{DEAD_LETTER_QUEUE_URL, DeliveryConfig};
use momento_webhook_receiver::routing::Target;

use crate::stack::{self, StackArgs};
use crate::{Failure, aws};

/// Which deployed function: by name, or through its stack.
#[derive(Args, Debug, Clone, Default)]
pub struct FunctionArgs {
    /// The webhook function (default: the stack's FunctionName output).
    #[arg(long, value_name = "NAME_OR_ARN")]
    pub function: Option<String>,
    #[command(flatten)]
    pub stack: StackArgs,
}

/// A deployed function and the environment Lambda gives it.
#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub environment: HashMap<String, String>,
}

impl Function {
    /// Its routing settings, read by the function's own parser.
    pub fn delivery(&self) -> Result<DeliveryConfig, Failure> {
        DeliveryConfig::from_lookup(|name| self.environment.get(name).cloned()).map_err(|e| {
            Failure::usage(format!("function {}: its configuration is not one this tool can use: {e}", self.name))
        })
    }

    pub fn dead_letter_queue_url(&self) -> Option<&str> {
        self.environment.get(DEAD_LETTER_QUEUE_URL).map(String::as_str).filter(|url| !url.is_empty())
    }
}

/// The routing settings in words: what `redrive` and `smoke` act on.
pub fn describe_routes(delivery: &DeliveryConfig) -> String {
    let routes: Vec<String> = delivery
        .routes
        .routes()
        .iter()
        .enumerate()
        .map(|(i, route)| {
            let name = route.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            let target = match &route.target {
                Target::EventBus(bus) => format!("event bus {bus}"),
                Target::StateMachine(arn) => format!("state machine {arn}"),
            };
            format!("  {}{name}: cache {:?}, topic {:?} -> {target}", i + 1, route.cache.source(), route.topic.source())
        })
        .collect();
    format!("event source {:?}; routes, first match wins:\n{}", delivery.event_source, routes.join("\n"))
}

/// The function `args` name (or its stack's), its configuration read; a usage error when none
/// is named, saying `why` it is needed.
pub async fn required(args: &FunctionArgs, why: &str) -> Result<(SdkConfig, Function), Failure> {
    let (sdk, name) = match (&args.function, stack::locate(&args.stack)?) {
        (Some(name), location) => {
            let region = args.stack.region.clone().or(location.and_then(|l| l.region));
            (aws::sdk_config(region.as_deref()).await?, name.clone())
        }
        (None, Some(location)) => {
            let (sdk, stack) = stack::describe(&location).await?;
            let name = stack.output("FunctionName")?.to_owned();
            (sdk, name)
        }
        (None, None) => {
            return Err(Failure::usage(format!(
                "no function: {why}; pass --function or --stack (or run from the project, where samconfig.toml names the stack)"
            )));
        }
    };
    let function = read(&sdk, &name).await?;
    Ok((sdk, function))
}

/// The configuration of the function `name`, as Lambda has it now.
pub async fn read(sdk: &SdkConfig, name: &str) -> Result<Function, Failure> {
    let client = aws_sdk_lambda::Client::new(sdk);
    let answer = client.get_function_configuration().function_name(name).send().await.map_err(|e| {
        Failure::usage(format!(
            "could not read the configuration of function {name} ({}); check --function/--stack, --region and your AWS credentials",
            aws::error_text(&e)
        ))
    })?;
    let environment = answer.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    Ok(Function { name: answer.function_name().unwrap_or(name).to_owned(), environment })
}
