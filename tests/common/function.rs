//! The built `momento-webhook` binary, started as Lambda starts it (environment variables and a
//! Runtime API on 127.0.0.1).
//!
//! `MOMENTO_WEBHOOK_BINARY` picks another build of it (the arm64 `bootstrap` of `make
//! test-arm64`), and `MOMENTO_WEBHOOK_RUNNER` a command to run it with (`qemu-aarch64 -L
//! /usr/aarch64-linux-gnu`), so the same tests cover what is deployed.

use std::io::Read;
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

/// A running function instance; killed when dropped. What it prints is collected as it comes,
/// as Lambda does (a pipe nobody reads would stop it once full).
pub struct Function {
    process: Process,
    pub api: Arc<RuntimeApi>,
}

/// One process of the function and what it has printed so far.
struct Process {
    child: Child,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

impl Process {
    fn spawn(api: &RuntimeApi, vars: &[(&str, &str)]) -> Self {
        let mut command = command();
        command.env_clear().envs(lambda_environment(api)).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in vars {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let collect = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Self { child, stdout, stderr }
    }

    /// Waits for the process to end (after `kill`, at once) and returns what it printed.
    fn finish(mut self, kill: bool) -> Output {
        if kill {
            let _ = self.child.kill();
        }
        let status = self.child.wait().unwrap();
        Output { status, stdout: self.stdout.join().unwrap(), stderr: self.stderr.join().unwrap() }
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.process.child.kill();
        let _ = self.process.child.wait();
    }
}

impl Function {
    /// Starts the function with Lambda's environment plus `vars`.
    pub fn start(vars: &[(&str, &str)]) -> Self {
        let api = Arc::new(RuntimeApi::start());
        Self { process: Process::spawn(&api, vars), api }
    }

    /// Replaces the process with a new one on the same Runtime API (so the same Function URL),
    /// as Lambda starts a fresh instance after one stopped; returns what the old one printed.
    pub fn restart(&mut self, vars: &[(&str, &str)]) -> Output {
        let old = std::mem::replace(&mut self.process, Process::spawn(&self.api, vars));
        old.finish(true)
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
    pub fn stop(self) -> Output {
        self.take_process().finish(true)
    }

    /// Waits for a function that must refuse to start; returns its exit code and stderr.
    pub fn refused(self) -> (i32, String) {
        let output = self.take_process().finish(false);
        (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
    }

    fn take_process(mut self) -> Process {
        // A process that is already over stands in for it, for `Drop`.
        let done = Process::spawn_finished();
        std::mem::replace(&mut self.process, done)
    }
}

impl Process {
    fn spawn_finished() -> Self {
        let mut child = Command::new("true").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let _ = child.wait();
        Self { child, stdout: std::thread::spawn(Vec::new), stderr: std::thread::spawn(Vec::new) }
    }
}

impl Function {
    /// A Function URL for this function (see [`super::function_url_front`]).
    pub fn url(&self) -> String {
        super::function_url_front::serve(Arc::clone(&self.api))
    }
}
