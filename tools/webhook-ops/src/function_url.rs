//! Lambda Function URL request events (payload format 2.0) built from a body and a signature:
//! what `webhook-ops sign --event` writes for `cargo lambda invoke`, and what the tests feed the
//! function (`tests/common` includes this file).

use serde_json::{Value, json};

use momento_webhook_receiver::http_handler::SIGNATURE_HEADER;

/// The `User-Agent` Momento sends with webhooks.
pub const MOMENTO_USER_AGENT: &str = "Momento/1.0 (Webhooks; momento-webhook-receiver sample)";

/// A Function URL event for `method` with `body`. With `base64`, the body is base64-encoded as
/// Lambda does for non-text content types.
pub fn request_event(method: &str, body: &[u8], signature: Option<&str>, base64: bool) -> Value {
    let mut headers = json!({
        "content-type": "application/json",
        "user-agent": MOMENTO_USER_AGENT,
        "host": "example.lambda-url.us-east-1.on.aws",
    });
    if let Some(signature) = signature {
        headers[SIGNATURE_HEADER] = json!(signature);
    }
    let body = if base64 {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "example",
            "domainName": "example.lambda-url.us-east-1.on.aws",
            "domainPrefix": "example",
            "http": {
                "method": method,
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": MOMENTO_USER_AGENT
            },
            "requestId": "c0ffee00-0000-4000-8000-000000000000",
            "routeKey": "$default",
            "stage": "$default",
            "time": "26/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1_795_651_200_000_i64
        },
        "body": body,
        "isBase64Encoded": base64
    })
}
