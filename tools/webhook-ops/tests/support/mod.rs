//! What the operator tools' tests add to `tests/common`: a deployed function as Lambda knows it
//! (its configuration on moto, read by the tools with `GetFunctionConfiguration`), a stack whose
//! outputs name it, and the tool run as an operator runs it: a shell with AWS credentials and a
//! region, and none of the function's settings.
#![allow(dead_code)] // each test crate uses a different subset
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use aws_config::SdkConfig;
use serde_json::json;

use super::common::{moto_endpoint, moto_environment, unique};

pub const OPS: &str = env!("CARGO_BIN_EXE_webhook-ops");

/// One run of `webhook-ops`.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `webhook-ops` in `dir` with moto as AWS, `extra` added to the environment, and `stdin`
/// on its standard input.
pub fn ops_in(dir: &Path, args: &[&str], extra: &[(&str, &str)], stdin: &str) -> Run {
    let mut child = Command::new(OPS)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(moto_environment())
        .envs(extra.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let Output { status, stdout, stderr } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into(),
        stderr: String::from_utf8_lossy(&stderr).into(),
    }
}

/// [`ops_in`] from a directory with no samconfig.toml.
pub fn ops(args: &[&str], stdin: &str) -> Run {
    ops_in(&std::env::temp_dir(), args, &[], stdin)
}

/// IAM `CreateRole` on moto (Lambda refuses a function whose role does not exist): the query
/// protocol by hand, so the tests need no IAM client.
fn role(name: &str) -> String {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let form =
        [("Action", "CreateRole"), ("Version", "2010-05-08"), ("RoleName", name), ("AssumeRolePolicyDocument", policy)];
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", v.bytes().map(|b| format!("%{b:02X}")).collect::<String>()))
        .collect::<Vec<_>>()
        .join("&");
    let mut response = ureq::post(&moto_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request")
        .send(body)
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.body_mut().read_to_string().unwrap_or_default());
    format!("arn:aws:iam::123456789012:role/{name}")
}

/// A function called `name` in moto's Lambda with `environment`, as `sam deploy` would leave it.
pub async fn deployed_function(sdk: &SdkConfig, name: &str, environment: &[(&str, &str)]) {
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let variables = environment.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role(&unique("webhook-role")))
        .code(aws_sdk_lambda::types::FunctionCode::builder().zip_file(empty_zip().into()).build())
        .environment(aws_sdk_lambda::types::Environment::builder().set_variables(Some(variables)).build())
        .send()
        .await
        .unwrap();
}

/// Sets more of a deployed function's environment, as a later `sam deploy` would.
pub async fn deployed_function_update(sdk: &SdkConfig, name: &str, environment: &[(&str, &str)]) {
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let current = lambda.get_function_configuration().function_name(name).send().await.unwrap();
    let mut variables = current.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
    variables.extend(environment.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    lambda
        .update_function_configuration()
        .function_name(name)
        .environment(aws_sdk_lambda::types::Environment::builder().set_variables(Some(variables)).build())
        .send()
        .await
        .unwrap();
}

/// An empty zip archive (the code is never run here).
fn empty_zip() -> Vec<u8> {
    let mut end = vec![0x50, 0x4b, 0x05, 0x06];
    end.extend([0u8; 18]);
    end
}

/// A stack on moto's CloudFormation whose outputs are `outputs`, as the tools read them.
pub async fn stack_with_outputs(sdk: &SdkConfig, outputs: &[(&str, &str)]) -> String {
    let name = unique("webhook-stack");
    let parameters: serde_json::Map<String, serde_json::Value> =
        outputs.iter().map(|(key, _)| ((*key).to_owned(), json!({"Type": "String"}))).collect();
    let template_outputs: serde_json::Map<String, serde_json::Value> =
        outputs.iter().map(|(key, _)| ((*key).to_owned(), json!({"Value": {"Ref": key}}))).collect();
    let template = json!({
        "Parameters": parameters,
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": template_outputs,
    });
    let mut create = aws_sdk_cloudformation::Client::new(sdk).create_stack().stack_name(&name);
    for (key, value) in outputs {
        create = create.parameters(
            aws_sdk_cloudformation::types::Parameter::builder().parameter_key(*key).parameter_value(*value).build(),
        );
    }
    create.template_body(template.to_string()).send().await.unwrap();
    name
}
