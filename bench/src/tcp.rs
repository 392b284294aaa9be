//! TCP workloads the forwarding benchmarks share: a backend that sinks or
//! echoes, and the three measurements run against it (directly or through
//! whatever is being measured).

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads everything (the stream test) or echoes (the other tests): the
/// first byte says which.
pub async fn backend() -> anyhow::Result<SocketAddr> {
    backend_on(TcpListener::bind("127.0.0.1:0").await?)
}

/// [`backend`] on a listener the caller made (e.g. in another network
/// namespace).
pub fn backend_on(listener: TcpListener) -> anyhow::Result<SocketAddr> {
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 256 * 1024];
                let mut mode = [0u8; 1];
                if stream.read_exact(&mut mode).await.is_err() {
                    return;
                }
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) if mode[0] == b'e' => {
                            if stream.write_all(&buffer[..n]).await.is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    Ok(address)
}

/// Gbit/s of `bytes` streamed over `connections` connections.
pub async fn stream(to: SocketAddr, bytes: u64, connections: u64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(to).await?;
            stream.write_all(b"s").await?;
            let chunk = vec![7u8; 256 * 1024];
            let mut left = bytes / connections;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                stream.write_all(&chunk[..n]).await?;
                left -= n as u64;
            }
            stream.shutdown().await?;
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(bytes as f64 * 8.0 / started.elapsed().as_secs_f64() / 1e9)
}

/// p50 and p99 (µs) of 64-byte request/response round trips.
pub async fn round_trips(to: SocketAddr, count: usize) -> anyhow::Result<(f64, f64)> {
    let mut stream = TcpStream::connect(to).await?;
    stream.set_nodelay(true)?;
    stream.write_all(b"e").await?;
    let message = [1u8; 64];
    let mut reply = [0u8; 64];
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        stream.write_all(&message).await?;
        stream.read_exact(&mut reply).await?;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    Ok((samples[count / 2], samples[count * 99 / 100]))
}

/// New connections (each with one round trip) per second.
pub async fn connection_rate(to: SocketAddr, count: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    for _ in 0..count {
        let mut stream = TcpStream::connect(to).await?;
        stream.set_nodelay(true)?;
        stream.write_all(b"eping").await?;
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).await?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}
