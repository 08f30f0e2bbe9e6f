//! A recording AWS endpoint on 127.0.0.1: it answers the JSON-protocol operations the function
//! uses (EventBridge `PutEvents`, Step Functions `StartExecution`, SQS `SendMessage`, Secrets
//! Manager `GetSecretValue`) and keeps every request the SDK actually sent, headers included.
//!
//! For what moto cannot do (fail one PutEvents entry, answer in microseconds, show the wire
//! request) — a scripted peer, not a mock of the client: the real SDK client talks HTTP to it,
//! or HTTPS as AWS serves it ([`AwsStub::tls`]: a certificate from a CA made for the run, which
//! the function trusts through `AWS_CA_BUNDLE`).

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
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
    /// With [`AwsStub::tls`]: a PEM file of the CA that signed the stub's certificate.
    pub ca_bundle: Option<PathBuf>,
    state: Arc<Mutex<State>>,
}

/// A CA made for one run, and a certificate it signed for 127.0.0.1.
struct Identity {
    ca_pem: String,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl Identity {
    fn generate() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(params, &ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&leaf_key, &issuer).unwrap();
        Self {
            ca_pem: ca.pem(),
            chain: vec![leaf.der().clone()],
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        }
    }
}

impl AwsStub {
    /// A stub that answers every call successfully (`secret` is what `GetSecretValue` returns).
    pub fn start(secret: &str) -> Self {
        Self::scripted(secret, |_| None)
    }

    /// A stub whose `script` may answer a request itself (`Some`); otherwise the request
    /// succeeds.
    pub fn scripted(secret: &str, script: impl Fn(&Recorded) -> Option<Answer> + Send + Sync + 'static) -> Self {
        Self::listen(secret, Arc::new(script), None)
    }

    /// A stub that answers every call successfully over HTTPS, with a certificate for 127.0.0.1
    /// from a CA made for this stub (its PEM in [`AwsStub::ca_bundle`]).
    pub fn tls(secret: &str) -> Self {
        Self::listen(secret, Arc::new(|_| None), Some(Identity::generate()))
    }

    fn listen(secret: &str, script: Arc<Script>, identity: Option<Identity>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let secret = secret.to_owned();
        let shared = Arc::clone(&state);
        let (endpoint, ca_bundle, tls) = match identity {
            None => (format!("http://{address}"), None, None),
            Some(identity) => {
                let path =
                    std::env::temp_dir().join(format!("aws-stub-ca-{}-{}.pem", std::process::id(), address.port()));
                std::fs::write(&path, &identity.ca_pem).unwrap();
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let config = rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(identity.chain, identity.key)
                    .unwrap();
                (format!("https://{address}"), Some(path), Some(Arc::new(config)))
            }
        };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                // As AWS's endpoints answer: without Nagle's delay, which would otherwise hold a TLS
                // record back until the client's delayed ACK (40 ms) and be measured as ours.
                let _ = stream.set_nodelay(true);
                let (state, script, secret, tls) =
                    (Arc::clone(&shared), Arc::clone(&script), secret.clone(), tls.clone());
                std::thread::spawn(move || match tls {
                    None => serve(stream, &state, &*script, &secret),
                    Some(config) => {
                        let Ok(connection) = rustls::ServerConnection::new(config) else { return };
                        serve(rustls::StreamOwned::new(connection, stream), &state, &*script, &secret);
                    }
                });
            }
        });
        Self { endpoint, ca_bundle, state }
    }

    /// Every request so far, in arrival order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().recorded.clone()
    }

    /// How many calls of one operation have arrived, and how many entries (`Entries`) they held,
    /// without copying them.
    pub fn count(&self, operation: &str) -> (usize, usize) {
        let suffix = format!(".{operation}");
        let state = self.state.lock().unwrap();
        let calls = state.recorded.iter().filter(|r| r.operation.ends_with(&suffix));
        calls
            .fold((0, 0), |(calls, entries), r| (calls + 1, entries + r.body["Entries"].as_array().map_or(0, Vec::len)))
    }

    /// The requests for one operation (`PutEvents`, `StartExecution`, ...).
    pub fn calls(&self, operation: &str) -> Vec<Recorded> {
        self.recorded().into_iter().filter(|r| r.operation.ends_with(&format!(".{operation}"))).collect()
    }
}

fn serve(stream: impl Read + Write, state: &Mutex<State>, script: &Script, secret: &str) {
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
        let writer = reader.get_mut();
        if writer.write_all(reply.as_bytes()).and_then(|()| writer.flush()).is_err() {
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
        "SendMessageBatch" => {
            let sent: Vec<Value> = body["Entries"]
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .map(|entry| json!({"Id": entry["Id"], "MessageId": format!("message-{id}"), "MD5OfMessageBody": ""}))
                        .collect()
                })
                .unwrap_or_default();
            (200, json!({"Successful": sent, "Failed": []}))
        }
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
