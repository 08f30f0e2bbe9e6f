//! The floor for cold-start benchmarks: an empty `lambda_http` function, built with the same
//! dependencies and profile as the real one. `make bench` compares against it.

use lambda_http::{Body, Error, Request, Response, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_request: Request| async { Ok::<_, Error>(Response::new(Body::Text("{}".into()))) })).await
}
