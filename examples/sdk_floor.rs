//! The second reference for cold-start benchmarks: `lambda_http` plus one EventBridge client built
//! at init and one `PutEvents` per request, nothing else: what any function forwarding to
//! EventBridge pays. Built with the same dependencies and profile as the real one; `make bench`
//! compares against it.

use lambda_http::{Body, Error, Request, Response, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = aws_config::load_from_env().await;
    let client = &aws_sdk_eventbridge::Client::new(&sdk);
    run(service_fn(move |request: Request| async move {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("Floor")
            .detail_type("floor")
            .detail(String::from_utf8_lossy(request.body().as_ref()).into_owned())
            .build();
        let output = client.put_events().entries(entry).send().await?;
        Ok::<_, Error>(Response::new(Body::Text(format!("{{\"failed\":{}}}", output.failed_entry_count()))))
    }))
    .await
}
