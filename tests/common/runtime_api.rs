//! A minimal Lambda Runtime API (the HTTP interface `bootstrap` binaries poll) on 127.0.0.1,
//! so tests and benchmarks can drive the built binary exactly as Lambda does: start-up, the
//! `next` long poll, responses, and init errors.

use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

#[derive(Default)]
struct State {
    /// (request id, event, X-Ray trace header)
    pending: VecDeque<(String, String, String)>,
    responses: HashMap<String, Result<Value, String>>,
    init_error: Option<String>,
    first_poll: Option<Instant>,
    /// The invocation's time-out, as `lambda-runtime-deadline-ms` tells it (30 s unless set).
    timeout: Option<Duration>,
}

/// The emulator. Dropping it leaves its threads blocked; they end with the test process.
pub struct RuntimeApi {
    pub address: String,
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl RuntimeApi {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let for_server = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&for_server);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Self { address, shared }
    }

    /// Queues `event` and waits for the function's answer (`Err` for an invocation error).
    pub fn invoke(&self, event: &Value, timeout: Duration) -> Result<Value, String> {
        self.invoke_traced(event, "Root=1-00000000-000000000000000000000000", timeout)
    }

    /// [`Self::invoke`] with `trace_header` as the invocation's X-Ray trace header, as Lambda
    /// passes it in `Lambda-Runtime-Trace-Id`.
    pub fn invoke_traced(&self, event: &Value, trace_header: &str, timeout: Duration) -> Result<Value, String> {
        self.invoke_as(None, event, trace_header, timeout)
    }

    /// [`Self::invoke`] under the request id `id`: Lambda may hand one asynchronous event (one
    /// request id) to two execution environments.
    pub fn invoke_with_id(&self, id: &str, event: &Value, timeout: Duration) -> Result<Value, String> {
        self.invoke_as(Some(id), event, "Root=1-00000000-000000000000000000000000", timeout)
    }

    /// A fresh request id, unique across emulators, as Lambda's are.
    pub fn request_id() -> String {
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        format!("req-{}-{}", std::process::id(), IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }

    fn invoke_as(
        &self,
        id: Option<&str>,
        event: &Value,
        trace_header: &str,
        timeout: Duration,
    ) -> Result<Value, String> {
        let id = id.map_or_else(Self::request_id, str::to_owned);
        let (lock, cond) = &*self.shared;
        let mut state = lock.lock().unwrap();
        state.pending.push_back((id.clone(), event.to_string(), trace_header.to_owned()));
        cond.notify_all();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(result) = state.responses.remove(&id) {
                return result;
            }
            if let Some(error) = &state.init_error {
                return Err(format!("init error: {error}"));
            }
            let left = deadline.checked_duration_since(Instant::now()).ok_or("no answer before the timeout")?;
            state = cond.wait_timeout(state, left).unwrap().0;
        }
    }

    /// Gives the following invocations `timeout` (Lambda's function time-out) instead of 30 s.
    pub fn set_invocation_timeout(&self, timeout: Duration) {
        self.shared.0.lock().unwrap().timeout = Some(timeout);
    }

    /// When the function first asked for an event (its init is done), waiting up to `timeout`.
    pub fn wait_first_poll(&self, timeout: Duration) -> Option<Instant> {
        let (lock, cond) = &*self.shared;
        let state = lock.lock().unwrap();
        let (state, _) = cond.wait_timeout_while(state, timeout, |s| s.first_poll.is_none()).unwrap();
        state.first_poll
    }
}

fn serve(stream: TcpStream, shared: &(Mutex<State>, Condvar)) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let Some(super::http::HttpRequest { method, path, body, .. }) = super::http::read_request(&mut reader) else {
            return;
        };
        let (lock, cond) = shared;
        let reply = if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let mut state = lock.lock().unwrap();
            state.first_poll.get_or_insert_with(Instant::now);
            cond.notify_all();
            let mut state = cond.wait_while(state, |s| s.pending.is_empty()).unwrap();
            let (id, event, trace) = state.pending.pop_front().unwrap();
            let timeout = state.timeout.unwrap_or(Duration::from_secs(30));
            let deadline = (SystemTime::now() + timeout).duration_since(UNIX_EPOCH).unwrap().as_millis();
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: {id}\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:test\r\n\
                 lambda-runtime-trace-id: {trace}\r\n\
                 content-length: {}\r\n\r\n{event}",
                event.len()
            )
        } else {
            let text = String::from_utf8_lossy(&body).into_owned();
            let mut state = lock.lock().unwrap();
            let segments: Vec<&str> = path.split('/').collect();
            match segments.as_slice() {
                [.., "invocation", id, "response"] => {
                    let value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"));
                    state.responses.insert((*id).to_owned(), value);
                }
                [.., "invocation", id, "error"] => {
                    state.responses.insert((*id).to_owned(), Err(text));
                }
                [.., "init", "error"] => state.init_error = Some(text),
                _ => {}
            }
            cond.notify_all();
            let ok = r#"{"status":"OK"}"#;
            format!(
                "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{ok}",
                ok.len()
            )
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// The environment Lambda gives a function, pointed at `api`.
pub fn lambda_environment(api: &RuntimeApi) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.address.as_str()),
        ("AWS_LAMBDA_FUNCTION_NAME", "momento-webhook-test"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/momento-webhook-test"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "test"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}
