//! Real HTTP on 127.0.0.1 for tests that cross processes: a tiny blocking HTTP/1.1
//! receiver (std `TcpListener`, a thread per connection) that records every
//! `x-posthook-delivery` id and answers `200` slowly, and a minimal test-only `Transport`
//! over `tokio::net::TcpStream` (one connection per request, `Connection: close`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use posthook::{Timer, Transport, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A receiver on 127.0.0.1 (port 0) answering `200` after `delay`.
pub(crate) struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    pub(crate) fn start(delay: Duration) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let record = record.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &record, delay);
                });
            }
        });
        Receiver { addr, seen }
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every delivery id received, in order (repeats included).
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<String>>, delay: Duration) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?; // request line
    let (mut length, mut id) = (0usize, None);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "x-posthook-delivery" => id = Some(value.to_owned()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    if let Some(id) = id {
        seen.lock().unwrap().push(id);
    }
    std::thread::sleep(delay);
    let mut stream = stream;
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    stream.flush()
}

/// POSTs over a fresh TCP connection; reads the status line of the answer.
pub(crate) struct TcpTransport;

#[async_trait::async_trait]
impl Transport for TcpTransport {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let uri = request.uri();
        let host = uri.host().unwrap_or("127.0.0.1").to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| TransportError::connect(e.to_string()))?;
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n");
        for (name, value) in request.headers() {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
        }
        let body = request.body();
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let io = |e: std::io::Error| TransportError::io(e.to_string());
        stream.write_all(head.as_bytes()).await.map_err(io)?;
        stream.write_all(body).await.map_err(io)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.map_err(io)?;
        let status = std::str::from_utf8(&answer)
            .ok()
            .and_then(|a| a.split(' ').nth(1))
            .and_then(|code| code.parse::<u16>().ok())
            .and_then(|code| http::StatusCode::from_u16(code).ok())
            .ok_or_else(|| TransportError::io("no HTTP status line"))?;
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = status;
        Ok(response)
    }
}

/// tokio's sleep as the worker's timer.
pub(crate) struct Sleep;

#[async_trait::async_trait]
impl Timer for Sleep {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
