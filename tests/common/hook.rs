//! A webhook receiver on 127.0.0.1 for the notification tests: one request at a time, each recorded
//! as (request head, body), each answered 200.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the receiver got, in order.
pub type Requests = Arc<Mutex<Vec<(String, String)>>>;

/// Serves `listener` on a thread until the process ends.
pub fn serve(listener: TcpListener) -> Requests {
    serve_gated(listener, Arc::default())
}

/// Like [`serve`], but while `hold` is set each request is recorded and then left unanswered
/// (the sender waits, as for a slow receiver) until `hold` is cleared.
pub fn serve_gated(listener: TcpListener, hold: Arc<AtomicBool>) -> Requests {
    let got: Requests = Arc::default();
    let g = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            if let Some(req) = read_request(&mut s) {
                g.lock().unwrap().push(req);
            }
            while hold.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    got
}

/// A receiver on a free port: its URL base (`http://127.0.0.1:PORT`) and what it gets.
pub fn start() -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (base, serve(listener))
}

fn read_request(s: &mut std::net::TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_string();
            let len = header(&head, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = buf[i + 4..].to_vec();
            while body.len() < len {
                let n = s.read(&mut chunk).ok()?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            return Some((head, String::from_utf8_lossy(&body).to_string()));
        }
    }
}

/// The value of a header in a request head (case-insensitive name).
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}
