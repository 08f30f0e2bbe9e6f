//! A recording AWS endpoint on 127.0.0.1: it answers the JSON-protocol operations the function
//! uses (EventBridge `PutEvents`, Step Functions `StartExecution`, SQS `SendMessage`, Secrets
//! Manager `GetSecretValue`) and keeps every request the SDK actually sent, headers included.
//!
//! For what moto cannot do (fail one PutEvents entry, answer in microseconds, show the wire
//! request) — a scripted peer, not a mock of the client: the real SDK client talks HTTP to it.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `x-amz-target`, e.g. `AWSEvents.PutEvents`.
    pub operation: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// An answer: HTTP status and JSON body.
pub type Answer = (u16, Value);
type Script = dyn Fn(&Recorded) -> Option<Answer> + Send + Sync;

#[derive(Default)]
struct State {
    recorded: Vec<Recorded>,
    /// Execution names already started, per state machine: a second start of the same name is
    /// answered `ExecutionAlreadyExists`, as Step Functions does once the first has finished.
    executions: HashSet<(String, String)>,
    next_id: u64,
}

/// The stub. Its threads end with the test process.
pub struct AwsStub {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

impl AwsStub {
    /// A stub that answers every call successfully (`secret` is what `GetSecretValue` returns).
    pub fn start(secret: &str) -> Self {
        Self::scripted(secret, |_| None)
    }

    /// A stub whose `script` may answer a request itself (`Some`); otherwise the request
    /// succeeds.
    pub fn scripted(secret: &str, script: impl Fn(&Recorded) -> Option<Answer> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let script: Arc<Script> = Arc::new(script);
        let secret = secret.to_owned();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (state, script, secret) = (Arc::clone(&shared), Arc::clone(&script), secret.clone());
                std::thread::spawn(move || serve(stream, &state, &*script, &secret));
            }
        });
        Self { endpoint, state }
    }

    /// Every request so far, in arrival order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().recorded.clone()
    }

    /// The requests for one operation (`PutEvents`, `StartExecution`, ...).
    pub fn calls(&self, operation: &str) -> Vec<Recorded> {
        self.recorded().into_iter().filter(|r| r.operation.ends_with(&format!(".{operation}"))).collect()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, script: &Script, secret: &str) {
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let Some(super::http::HttpRequest { headers, body, .. }) = super::http::read_request(&mut reader) else {
            return;
        };
        let recorded = Recorded {
            operation: headers.get("x-amz-target").cloned().unwrap_or_default(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            headers,
        };
        let (status, answer) = match script(&recorded) {
            Some(answer) => {
                state.lock().unwrap().recorded.push(recorded);
                answer
            }
            None => default_answer(state, recorded, secret),
        };
        let text = answer.to_string();
        let reason = if status < 300 { "OK" } else { "Error" };
        let reply = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn default_answer(state: &Mutex<State>, recorded: Recorded, secret: &str) -> Answer {
    let mut state = state.lock().unwrap();
    state.next_id += 1;
    let id = state.next_id;
    let operation = recorded.operation.rsplit('.').next().unwrap_or_default().to_owned();
    let body = recorded.body.clone();
    state.recorded.push(recorded);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    match operation.as_str() {
        "PutEvents" => {
            let entries: Vec<Value> = body["Entries"]
                .as_array()
                .map(|entries| entries.iter().map(|_| json!({"EventId": format!("event-{id}")})).collect())
                .unwrap_or_default();
            (200, json!({"FailedEntryCount": 0, "Entries": entries}))
        }
        "StartExecution" => {
            let machine = body["stateMachineArn"].as_str().unwrap_or_default().to_owned();
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            let arn = format!("{}:{name}", machine.replacen(":stateMachine:", ":execution:", 1));
            if state.executions.insert((machine, name)) {
                (200, json!({"executionArn": arn, "startDate": now}))
            } else {
                (
                    400,
                    json!({"__type": "ExecutionAlreadyExists", "message": format!("Execution Already Exists: '{arn}'")}),
                )
            }
        }
        "SendMessage" => (200, json!({"MessageId": format!("message-{id}"), "MD5OfMessageBody": ""})),
        "GetSecretValue" => (
            200,
            json!({"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:stub", "Name": "stub",
                   "SecretString": secret, "VersionId": "v1", "CreatedDate": now}),
        ),
        other => (
            400,
            json!({"__type": "UnknownOperationException", "message": format!("the stub does not answer {other}")}),
        ),
    }
}
