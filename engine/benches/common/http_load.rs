//! A keep-alive HTTP/1.1 load generator for the benchmarks: one std thread per connection, each
//! repeating one GET until the round ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One keep-alive GET; returns the body length (an error on a status other than 200).
pub fn get_once(reader: &mut BufReader<TcpStream>, path: &str) -> std::io::Result<usize> {
    reader.get_mut().write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("{path}: status line {line:?}")));
    }
    let mut len = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    Ok(len)
}

/// Drives one connection per path for `round`: (req/s, p50, p99).
pub fn load(port: u16, paths: &[String], round: Duration) -> (f64, Duration, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = paths
        .iter()
        .cloned()
        .map(|path| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_nodelay(true).unwrap();
                let mut r = BufReader::new(s);
                let mut lat = Vec::with_capacity(100_000);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    get_once(&mut r, &path).unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(round);
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let rate = all.len() as f64 / t0.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize];
    (rate, pct(0.5), pct(0.99))
}
