//! Transports, each beside its raw limit measured in the same run:
//! - round trip of a 16-byte frame, client and server on one single-threaded runtime;
//! - one-way bulk of 1 MiB frames to a server on its own thread, ended by a marker frame.
//!
//! Raw limits: tcp and uds, a plain tokio socket with a 4-byte length prefix; inproc, tokio
//! mpsc channels carrying the same `Frame` values.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use xoscar_benches::raw::RawPingPong;
use xoscar_benches::*;
use xoscar_transport::{Address, Channel, TransportConfig, connect};
use xoscar_wire::{Envelope, Frame, FrameKind};

const TRANSPORTS: [&str; 3] = ["tcp", "uds", "inproc"];

fn round_trip(c: &mut Criterion) {
    let payload = Bytes::from(vec![0x5A; 16]);
    for transport in TRANSPORTS {
        let mut group = c.benchmark_group(format!("round trip 16 B {transport}"));
        let rt = current_thread();
        let mut channel = rt.block_on(async {
            let listener = our_listener(&address(transport, "rtt")).await;
            let local = listener.local_addr().clone();
            tokio::spawn(our_echo_server(listener));
            connect(&local, &TransportConfig::default()).await.expect("connect")
        });
        group.bench_function("ours", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for id in 0..iters {
                        channel.send(request(id, &payload)).await.unwrap();
                        channel.recv().await.unwrap().unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        raw_round_trip_bench(&mut group, &rt, transport, &payload);
        group.finish();
    }
}

fn raw_round_trip_bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    transport: &str,
    payload: &Bytes,
) {
    let mut raw = rt.block_on(RawPingPong::start(transport, "raw-rtt"));
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| rt.block_on(raw.time_round_trips(iters, payload)))
    });
}

fn bulk(c: &mut Criterion) {
    let payload = Bytes::from(vec![0xA5; 1 << 20]);
    for transport in TRANSPORTS {
        let mut group = c.benchmark_group(format!("bulk 1 MiB one-way {transport}"));
        group.throughput(Throughput::Bytes(payload.len() as u64));
        let rt = current_thread();
        let target = address(transport, "bulk");
        let local: Address = spawn_server_thread(move |ready| async move {
            let listener = our_listener(&target).await;
            ready.send(listener.local_addr().clone()).unwrap();
            our_sink_server(listener).await;
        });
        let mut channel =
            rt.block_on(connect(&local, &TransportConfig::default())).expect("connect");
        group.bench_function("ours", |b| {
            b.iter_custom(|iters| rt.block_on(our_bulk(&mut channel, &payload, iters)))
        });
        raw_bulk_bench(&mut group, &rt, transport, &payload);
        group.finish();
    }
}

async fn our_bulk(channel: &mut Channel, payload: &Bytes, count: u64) -> Duration {
    let start = Instant::now();
    for id in 0..count {
        channel.feed(request(id, payload)).await.unwrap();
    }
    channel.send(ping(count)).await.unwrap();
    let pong = channel.recv().await.unwrap().unwrap();
    assert_eq!(pong.kind(), FrameKind::Pong);
    start.elapsed()
}

fn raw_bulk_bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    transport: &str,
    payload: &Bytes,
) {
    macro_rules! socket_bench {
        ($stream:expr) => {{
            let mut stream = $stream;
            group.bench_function("raw", |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        raw_bulk(&mut stream, payload, iters).await.unwrap();
                        start.elapsed()
                    })
                })
            });
        }};
    }
    match transport {
        "tcp" => {
            let local = spawn_server_thread(|ready| async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                while let Ok((stream, _)) = listener.accept().await {
                    stream.set_nodelay(true).unwrap();
                    tokio::spawn(raw_sink(stream));
                }
            });
            socket_bench!(rt.block_on(async {
                let stream = TcpStream::connect(local).await.unwrap();
                stream.set_nodelay(true).unwrap();
                stream
            }))
        }
        "uds" => {
            let Address::Unix(path) = address("uds", "raw-bulk") else { unreachable!() };
            let _ = std::fs::remove_file(&path);
            let bound = path.clone();
            spawn_server_thread(move |ready| async move {
                let listener = UnixListener::bind(&bound).unwrap();
                ready.send(()).unwrap();
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(raw_sink(stream));
                }
            });
            socket_bench!(rt.block_on(UnixStream::connect(&path)).unwrap())
        }
        _ => {
            let (to_server, mut server_rx) = mpsc::channel::<Frame>(128);
            let (server_tx, mut from_server) = mpsc::channel::<Frame>(1);
            spawn_server_thread(move |ready| async move {
                ready.send(()).unwrap();
                while let Some(frame) = server_rx.recv().await {
                    if matches!(frame.envelope, Envelope::Ping(_))
                        && server_tx.send(frame).await.is_err()
                    {
                        return;
                    }
                }
            });
            group.bench_function("raw", |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for id in 0..iters {
                            to_server.send(request(id, payload)).await.unwrap();
                        }
                        to_server.send(ping(iters)).await.unwrap();
                        from_server.recv().await.unwrap();
                        start.elapsed()
                    })
                })
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = xoscar_benches::criterion();
    targets = round_trip, bulk
}
criterion_main!(benches);
