//! The demo until the actor layer lands: an echo server on each transport (TCP, Unix socket,
//! in-process), a client that sends framed requests with payloads, checks the echoes and
//! prints the round-trip time and bulk bandwidth it saw.
//!
//! Run it with `cargo run --release --example echo`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use xoscar::transport::{Address, Listener, TransportConfig, TransportError, connect, listen};
use xoscar::wire::{Frame, ReceivedFrame};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let socket = std::env::temp_dir().join(format!("xoscar-echo-{}.sock", std::process::id()));
    let addresses: [Address; 3] =
        ["127.0.0.1:0".parse()?, Address::unix(&socket), "inproc://echo-demo".parse()?];
    let config = TransportConfig::default();
    println!("{:<40} {:>14} {:>16}", "server", "16 B round trip", "1 MiB echo");
    for address in addresses {
        let listener = listen(&address, &config).await?;
        let local = listener.local_addr().clone();
        let server = tokio::spawn(serve(listener));

        let mut channel = connect(&local, &config).await.context("dialling the echo server")?;
        let small = Bytes::from_static(b"0123456789abcdef");
        let rounds = 2_000u32;
        let started = Instant::now();
        for id in 0..rounds {
            let sent = Frame::request(id.into(), Bytes::from_static(b"demo"), vec![small.clone()]);
            channel.send(sent.clone()).await?;
            let echoed = channel.recv().await?.map(ReceivedFrame::into_frame);
            ensure!(echoed == Some(sent), "echo differs");
        }
        let round_trip = started.elapsed() / rounds;

        let big = Bytes::from(vec![0xA5u8; 1 << 20]);
        let started = Instant::now();
        for id in 0..20u64 {
            channel.send(Frame::request(id, Bytes::new(), vec![big.clone()])).await?;
            let echoed = channel.recv().await?.context("server closed")?;
            ensure!(echoed.into_parts().1[..] == [big.clone()], "1 MiB echo differs");
        }
        let bandwidth = 20.0 * (1 << 20) as f64 / started.elapsed().as_secs_f64() / 1e9;

        println!("{:<40} {:>14} {:>11.2} GB/s", local.to_string(), micros(round_trip), bandwidth);
        server.abort();
    }
    Ok(())
}

/// Echoes every frame on every connection.
async fn serve(mut listener: Listener) {
    loop {
        let Ok(incoming) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let mut channel = incoming.handshake().await?;
            while let Some(frame) = channel.recv().await? {
                channel.send(frame.into_frame()).await?;
            }
            Ok::<_, TransportError>(())
        });
    }
}

fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
}
