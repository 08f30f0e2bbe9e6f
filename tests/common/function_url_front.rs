//! A Function URL in front of a function under test: plain HTTP on 127.0.0.1, each request
//! turned into a Function URL event for the Runtime API (as Lambda's URL front end does) and
//! the function's answer back into an HTTP response. What `webhook-ops smoke` talks to in tests.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::function_url::request_event;
use momento_webhook_receiver::http_handler::SIGNATURE_HEADER;

use super::runtime_api::RuntimeApi;

/// Serves `api`'s function at the returned `http://127.0.0.1:<port>/` until the process ends.
pub fn serve(api: Arc<RuntimeApi>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let api = Arc::clone(&api);
            std::thread::spawn(move || answer(stream, &api));
        }
    });
    url
}

fn answer(stream: TcpStream, api: &RuntimeApi) {
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let Some(super::http::HttpRequest { method, headers, body, .. }) = super::http::read_request(&mut reader) else {
        return;
    };
    let event = request_event(&method, &body, headers.get(SIGNATURE_HEADER).map(String::as_str), false);
    let (status, text) = match api.invoke(&event, Duration::from_secs(30)) {
        Ok(response) => {
            (response["statusCode"].as_u64().unwrap_or(502), response["body"].as_str().unwrap_or_default().to_owned())
        }
        Err(error) => (502, format!("{{\"Message\":\"{}\"}}", error.replace('"', "'"))),
    };
    let reply = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = writer.write_all(reply.as_bytes());
}
