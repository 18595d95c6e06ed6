//! Kong twin benchmark: Admin API GETs per second and proxy requests per second on
//! loopback, and the memory 10,000 entities take.
//!
//! The load generator runs in the same process on the same 2 cores as the twin: a fixed
//! number of keep-alive HTTP/1.1 connections, each sending its next request as soon as the
//! previous answer is read (like `wrk`). Figures are what the twin serves while sharing
//! the machine with its client, so they understate a twin on its own.
//!
//! Run: `cargo bench --bench twin` (add `-- --quick` for shorter rounds).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use runsheet_twin::kong::{KongTwin, TwinConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The request path of the i-th request of a case.
type PathFn = Box<dyn Fn(u64) -> String + Send + Sync>;

/// Entities loaded for the memory figure and the admin GETs.
const ENTITIES: usize = 10_000;

/// Concurrent keep-alive connections of the load generator.
const CONNECTIONS: usize = 32;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let seconds = if quick { 2 } else { 5 };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return eprintln!("runtime: {e}"),
    };
    if let Err(e) = runtime.block_on(bench(Duration::from_secs(seconds))) {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

/// Runs every case and prints the figures.
async fn bench(round: Duration) -> Result<(), Box<dyn std::error::Error>> {
    let before = resident_kib();
    let mut twin = KongTwin::start(TwinConfig::default()).await?;
    let address = twin.address().to_string();
    let empty = resident_kib();
    let started = Instant::now();
    populate(&address, ENTITIES).await?;
    let created = started.elapsed();
    let loaded = resident_kib();
    println!(
        "created {ENTITIES} services + {ENTITIES} routes through POSTs in {:.2} s ({:.0} writes/s)",
        created.as_secs_f64(),
        (2 * ENTITIES) as f64 / created.as_secs_f64()
    );
    println!("memory (RSS, KiB): process before twin {before}, empty twin {empty}, with the entities {loaded}");
    println!(
        "  => {:.1} MiB for {} entities ({:.0} bytes each, allocator slack included)",
        (loaded.saturating_sub(empty)) as f64 / 1024.0,
        2 * ENTITIES,
        (loaded.saturating_sub(empty)) as f64 * 1024.0 / (2 * ENTITIES) as f64
    );
    let reload = Instant::now();
    twin.load(&config(ENTITIES))?;
    println!(
        "declarative load of the same {} entities: {:.2} s",
        2 * ENTITIES,
        reload.elapsed().as_secs_f64()
    );
    let address = twin.address().to_string();
    println!("{:<34} {:>12} {:>10}", "case", "requests/s", "requests");
    let cases: [(&str, PathFn); 4] = [
        ("admin GET /status", Box::new(|_| "/status".to_owned())),
        ("admin GET /", Box::new(|_| "/".to_owned())),
        (
            "admin GET /services/{name}",
            Box::new(|i| format!("/services/service-{}", i % ENTITIES as u64)),
        ),
        (
            "admin GET /services?size=100",
            Box::new(|_| "/services?size=100".to_owned()),
        ),
    ];
    for (name, path) in cases {
        let (count, elapsed) = load(&address, Arc::from(path), round).await?;
        println!(
            "{name:<34} {:>12.0} {count:>10}",
            count as f64 / elapsed.as_secs_f64()
        );
    }
    let upstream = upstream().await?;
    let proxy = twin.start_proxy().await?.to_string();
    twin.load(&json!({
        "_format_version": "3.0",
        "upstreams": [{"name": "echo.internal", "targets": [
            {"target": upstream.to_string(), "weight": 100},
        ]}],
        "services": [{"name": "echo", "host": "echo.internal", "port": 80,
            "routes": [{"name": "echo", "paths": ["/echo"]}]}],
    }))?;
    let baseline = load(&upstream.to_string(), Arc::new(|_| "/echo".to_owned()), round).await?;
    let proxied = load(&proxy, Arc::new(|_| "/echo".to_owned()), round).await?;
    let rate = |(count, elapsed): (u64, Duration)| count as f64 / elapsed.as_secs_f64();
    println!(
        "{:<34} {:>12.0} {:>10}",
        "upstream direct (baseline)",
        rate(baseline),
        baseline.0
    );
    println!(
        "{:<34} {:>12.0} {:>10}",
        "proxy GET /echo -> upstream",
        rate(proxied),
        proxied.0
    );
    Ok(())
}

/// A declarative configuration of `n` services, each with one route.
fn config(n: usize) -> Value {
    let services: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "name": format!("service-{i}"),
                "url": format!("http://backend-{}.internal:8080/v1", i % 50),
                "tags": ["bench", format!("team-{}", i % 7)],
                "routes": [{"name": format!("route-{i}"), "paths": [format!("/api/{i}")]}],
            })
        })
        .collect();
    json!({"_format_version": "3.0", "services": services})
}

/// Creates `n` services, each with one route, through the Admin API on 8 connections.
async fn populate(address: &str, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let workers = 8;
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let mut stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let host = address.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut buffer = Vec::new();
            for i in (worker..n).step_by(workers) {
                let bodies = [
                    (
                        "/services".to_owned(),
                        json!({"name": format!("service-{i}"),
                               "url": format!("http://backend-{}.internal:8080/v1", i % 50),
                               "tags": ["bench", format!("team-{}", i % 7)]}),
                    ),
                    (
                        format!("/services/service-{i}/routes"),
                        json!({"name": format!("route-{i}"), "paths": [format!("/api/{i}")]}),
                    ),
                ];
                for (path, body) in bodies {
                    let body = body.to_string();
                    let request = format!(
                        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    stream.write_all(request.as_bytes()).await?;
                    let status = read_response(&mut stream, &mut buffer).await?;
                    if status != 201 {
                        return Err(std::io::Error::other(format!("POST {path}: status {status}")));
                    }
                }
            }
            Ok::<(), std::io::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Sends requests on `CONNECTIONS` keep-alive connections for `round`; answers counted.
async fn load(
    address: &str,
    path: Arc<dyn Fn(u64) -> String + Send + Sync>,
    round: Duration,
) -> Result<(u64, Duration), Box<dyn std::error::Error>> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for connection in 0..CONNECTIONS {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (done, stop, path) = (Arc::clone(&done), Arc::clone(&stop), Arc::clone(&path));
        let host = address.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut stream = stream;
            let mut buffer = Vec::with_capacity(64 * 1024);
            let mut i = connection as u64 * 7919;
            while !stop.load(Ordering::Relaxed) {
                let request = format!("GET {} HTTP/1.1\r\nHost: {host}\r\n\r\n", path(i));
                stream.write_all(request.as_bytes()).await?;
                let status = read_response(&mut stream, &mut buffer).await?;
                if status != 200 {
                    return Err(std::io::Error::other(format!("status {status}")));
                }
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            Ok::<(), std::io::Error>(())
        }));
    }
    tokio::time::sleep(round).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for task in tasks {
        task.await??;
    }
    Ok((done.load(Ordering::Relaxed), elapsed))
}

/// Reads one HTTP/1.1 response with a `Content-Length` body; its status.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<u16> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok())
                .unwrap_or(0);
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0);
            let total = end + 4 + length;
            while buffer.len() < total {
                let mut chunk = [0u8; 16 * 1024];
                let read = stream.read(&mut chunk).await?;
                if read == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buffer.extend_from_slice(&chunk[..read]);
            }
            buffer.drain(..total);
            return Ok(status);
        }
        let mut chunk = [0u8; 16 * 1024];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// A minimal keep-alive HTTP/1.1 upstream answering every request with `200 ok`.
async fn upstream() -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let mut chunk = [0u8; 8 * 1024];
                    let Ok(read) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        buffer.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(address)
}

/// The process's resident set size in KiB (0 where /proc is not available).
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
