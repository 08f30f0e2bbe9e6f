//! The log lines a piece of test code writes, as the function writes them (JSON).

/// Runs `future` with a JSON log subscriber for this thread (tokio's test runtime is
/// single-threaded) and returns its output with the future's.
pub async fn captured<T>(future: impl std::future::Future<Output = T>) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish();
    let output = {
        let _guard = tracing::subscriber::set_default(subscriber);
        future.await
    };
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (output, log)
}
