//! The built `momento-webhook` binary, started as Lambda starts it (environment variables and a
//! Runtime API on 127.0.0.1).
//!
//! `MOMENTO_WEBHOOK_BINARY` picks another build of it (the arm64 `bootstrap` of `make
//! test-arm64`), and `MOMENTO_WEBHOOK_RUNNER` a command to run it with (`qemu-aarch64 -L
//! /usr/aarch64-linux-gnu`), so the same tests cover what is deployed.

use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::function_url::request_event;
use super::runtime_api::{RuntimeApi, lambda_environment};

/// The function's binary: `MOMENTO_WEBHOOK_BINARY`, else the one Cargo built for these tests
/// (tests of the tools' package find it beside their own executable, as `cargo test --workspace`
/// builds it).
pub fn binary() -> String {
    if let Some(binary) = std::env::var("MOMENTO_WEBHOOK_BINARY").ok().filter(|b| !b.is_empty()) {
        return binary;
    }
    match option_env!("CARGO_BIN_EXE_momento-webhook") {
        Some(binary) => binary.to_owned(),
        None => {
            // target/<profile>/deps/<test> -> target/<profile>/momento-webhook
            let exe = std::env::current_exe().unwrap();
            let built = exe.parent().and_then(|deps| deps.parent()).unwrap().join("momento-webhook");
            assert!(
                built.exists(),
                "{} is missing: run `cargo build --bin momento-webhook` (or the tests with `make test`)",
                built.display()
            );
            built.display().to_string()
        }
    }
}

/// The binary under test and how to run it.
pub fn command() -> Command {
    let binary = binary();
    match std::env::var("MOMENTO_WEBHOOK_RUNNER").ok().filter(|r| !r.trim().is_empty()) {
        Some(runner) => {
            let mut words = runner.split_whitespace();
            let mut command = Command::new(words.next().unwrap_or_default());
            command.args(words).arg(binary);
            command
        }
        None => Command::new(binary),
    }
}

/// A running function instance; killed when dropped.
pub struct Function {
    pub child: Child,
    pub api: Arc<RuntimeApi>,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    /// Starts the function with Lambda's environment plus `vars`.
    pub fn start(vars: &[(&str, &str)]) -> Self {
        let api = RuntimeApi::start();
        let mut command = command();
        command.env_clear().envs(lambda_environment(&api)).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in vars {
            command.env(k, v);
        }
        Self { child: command.spawn().unwrap(), api: Arc::new(api) }
    }

    /// Sends a Function URL request and returns the status and JSON body of the answer.
    pub fn invoke(&self, method: &str, body: &[u8], signature: Option<&str>) -> (u16, Value) {
        self.invoke_traced(method, body, signature, "Root=1-00000000-000000000000000000000000")
    }

    /// [`Self::invoke`] with an X-Ray trace header on the invocation.
    pub fn invoke_traced(&self, method: &str, body: &[u8], signature: Option<&str>, trace: &str) -> (u16, Value) {
        let event = request_event(method, body, signature, false);
        let response = self.api.invoke_traced(&event, trace, Duration::from_secs(30)).unwrap();
        let status = response["statusCode"].as_u64().unwrap() as u16;
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        (status, body)
    }

    /// Stops the function and returns everything it printed (stdout: JSON log lines and EMF
    /// documents, as Lambda collects them).
    pub fn stop(mut self) -> Output {
        let _ = self.child.kill();
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        child.wait_with_output().unwrap()
    }

    /// Waits for a function that must refuse to start; returns its exit code and stderr.
    pub fn refused(mut self) -> (i32, String) {
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let output = child.wait_with_output().unwrap();
        (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

impl Function {
    /// A Function URL for this function (see [`super::function_url_front`]).
    pub fn url(&self) -> String {
        super::function_url_front::serve(Arc::clone(&self.api))
    }
}
