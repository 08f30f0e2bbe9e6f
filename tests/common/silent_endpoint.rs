//! An endpoint on 127.0.0.1 that accepts TCP connections and never answers: the worst kind of
//! AWS outage for a 5 s deadline, since nothing fails fast.

/// Its `http://` URL; the listener lives until the process ends.
pub fn silent_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut open = Vec::new(); // held, so the connections stay open and silent
        for stream in listener.incoming().flatten() {
            open.push(stream);
        }
    });
    url
}
