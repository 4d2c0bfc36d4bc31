//! Buffer transfers (`copy_to`, `BufferWriter`), heavy, in a binary of their own: 3 to 64 MiB
//! written into buffers another pool exposes, several at once, byte-exact, over inproc, uds,
//! tcp and to a child process; chunks paused longer than the caller's idle timeout keep their
//! connection; a file exposed by reference receives the bytes too; errors name the buffer and
//! the offset. The caller's idle timeout is 100 ms.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::actors::{Empty, Fnv, Inspect, Reserve, Store, fnv};
use common::child::{self, spawn_pool};
use common::{Transport, remote_pool, run};
use xoscar_actor::{ActorError, ActorPool, ActorRef, caller, configure, copy_to, create_actor};
use xoscar_pool::PoolConfig;
use xoscar_transport::Address;

const MIB: usize = 1 << 20;

#[test]
fn child_pool_entry() {
    child::child_main();
}

/// `len` bytes of a pattern that differs per `seed` and per position.
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 16) as u8)
        .collect::<Vec<u8>>()
        .into()
}

async fn hash_of(store: &ActorRef<Store>, buffer: &xoscar_actor::BufferRef) -> u64 {
    let inspect = Inspect { buffer: Some(buffer.clone()), withdraw: false };
    store.call(inspect).await.unwrap().hash
}

/// Three transfers at once (3 MiB + 7, 16 MiB and 64 MiB), then one written by hand in 1 MiB
/// chunks with pauses of 2.5 idle timeouts between them, then the errors.
async fn transfers_to(at: &Address) {
    let store = create_actor::<Store>(at, "Store", &Empty {}).await.unwrap();
    let sizes = [3 * MIB + 7, 16 * MIB, 64 * MIB];
    let mut targets = Vec::new();
    for len in sizes {
        targets.push(store.call(Reserve { len: len as u64 }).await.unwrap());
    }
    let datas: Vec<Bytes> = sizes.iter().zip(1..).map(|(len, seed)| pattern(*len, seed)).collect();
    let transfers = datas
        .iter()
        .zip(&targets)
        .map(|(data, target)| copy_to(vec![data.clone()], vec![target.clone()]).into_future());
    for result in futures_util::future::join_all(transfers).await {
        result.unwrap();
    }
    for (data, target) in datas.iter().zip(&targets) {
        assert_eq!(hash_of(&store, target).await, fnv(data), "{at}: {} bytes", data.len());
    }

    // By hand, pausing longer than the idle timeout between chunks: one lease throughout, so
    // the connection is neither reaped nor replaced.
    let target = store.call(Reserve { len: (3 * MIB) as u64 }).await.unwrap();
    let data = pattern(3 * MIB, 9);
    let writer = target.writer().await.unwrap();
    let connects = caller().unwrap().stats().connects;
    for start in (0..data.len()).step_by(MIB) {
        writer.write(&target, start as u64, data.slice(start..start + MIB)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(caller().unwrap().stats().connects, connects, "{at}: the same connection");
    drop(writer);
    assert_eq!(hash_of(&store, &target).await, fnv(&data));

    // Errors name the buffer and the offset.
    let writer = target.writer().await.unwrap();
    let past_end = writer.write(&target, (3 * MIB - 1) as u64, Bytes::from_static(b"xy")).await;
    match past_end.unwrap_err() {
        ActorError::Buffer { buffer, offset, .. } => {
            assert_eq!((buffer, offset), (target.id(), (3 * MIB - 1) as u64));
        }
        other => panic!("{other:?}"),
    }
    let too_long = copy_to(vec![pattern(3 * MIB + 1, 0)], vec![target.clone()]).await;
    assert!(matches!(too_long, Err(ActorError::Buffer { offset: 0, .. })), "{too_long:?}");
    store.call(Inspect { buffer: Some(target.clone()), withdraw: true }).await.unwrap();
    let gone = writer.write(&target, MIB as u64, Bytes::from_static(b"late")).await.unwrap_err();
    match gone {
        ActorError::Buffer { address, buffer, offset, reason } => {
            assert_eq!((address, buffer, offset), (at.to_string(), target.id(), MIB as u64));
            assert!(reason.contains("no such buffer"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// A file exposed by `pool` (reached through its listener): 9 MiB + 3 written in 4 MiB chunks
/// land in the file byte for byte; the bytes past the exposed length are never touched.
async fn into_a_file(pool: &ActorPool) {
    let path = std::env::temp_dir().join(format!("xoscar-transfer-{}.bin", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let len = 9 * MIB + 3;
    file.set_len(len as u64 + 5).unwrap();
    let target = pool.handle().expose_file(file, len as u64);
    let data = pattern(len, 5);
    copy_to(vec![data.clone()], vec![target.clone()]).await.unwrap();
    let written = std::fs::read(&path).unwrap();
    assert_eq!(fnv(&written[..len]), fnv(&data), "{}", pool.address());
    assert_eq!(&written[len..], &[0; 5]);
    let past = copy_to(vec![pattern(len + 1, 0)], vec![target.clone()]).await;
    assert!(matches!(past, Err(ActorError::Buffer { .. })), "{past:?}");
    assert!(pool.handle().withdraw_buffer(&target));
    std::fs::remove_file(&path).unwrap();
}

/// A sink that keeps what is written into memory of its own; it refuses the chunk at
/// `refuse` (if any).
struct VecSink {
    bytes: std::sync::Mutex<Vec<u8>>,
    refuse: Option<u64>,
}

impl xoscar_actor::BufferSink for VecSink {
    fn write(
        &self,
        offset: u64,
        chunk: xoscar_wire::Payloads,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> {
        if self.refuse == Some(offset) {
            return Box::pin(async { Err("the sink is full".to_owned()) });
        }
        let mut bytes = self.bytes.lock().unwrap();
        let mut at = offset as usize;
        for part in chunk.iter() {
            bytes[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        Box::pin(async { Ok(()) })
    }
}

/// A buffer held by a sink (memory the pool does not own) receives every chunk, is checked
/// for bounds before the sink sees anything, and a sink's error names the buffer and offset.
async fn into_a_sink(pool: &ActorPool) {
    let len = 5 * MIB + 1;
    let sink = std::sync::Arc::new(VecSink { bytes: vec![0; len].into(), refuse: None });
    let target = pool.handle().expose_sink(sink.clone(), len as u64);
    let data = pattern(len, 6);
    copy_to(vec![data.clone()], vec![target.clone()]).chunk_size(MIB).await.unwrap();
    assert_eq!(fnv(&sink.bytes.lock().unwrap()), fnv(&data), "{}", pool.address());
    let past = copy_to(vec![pattern(len + 1, 0)], vec![target.clone()]).await;
    assert!(matches!(past, Err(ActorError::Buffer { .. })), "{past:?}");
    assert!(pool.handle().withdraw_buffer(&target));

    let refusing = VecSink { bytes: vec![0; 2 * MIB].into(), refuse: Some(MIB as u64) };
    let target = pool.handle().expose_sink(std::sync::Arc::new(refusing), (2 * MIB) as u64);
    let refused = copy_to(vec![pattern(2 * MIB, 1)], vec![target.clone()]).chunk_size(MIB).await;
    match refused.unwrap_err() {
        ActorError::Buffer { buffer, offset, reason, .. } => {
            assert_eq!((buffer, offset), (target.id(), MIB as u64));
            assert!(reason.contains("the sink is full"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn transfers_are_byte_exact_on_every_transport_and_across_processes() {
    configure(PoolConfig::default().idle_timeout(Duration::from_millis(100))).unwrap();
    let child = spawn_pool("127.0.0.1:0");
    run(async move {
        for transport in [Transport::Inproc, Transport::Uds, Transport::Tcp] {
            let pool = remote_pool(transport).await;
            transfers_to(pool.address()).await;
            into_a_file(&pool).await;
            into_a_sink(&pool).await;
        }
        transfers_to(&child.address).await;

        // A pool of this process: chunks are copied straight into the target.
        let local = ActorPool::start(common::address(Transport::Inproc)).await.unwrap();
        let store = local.create(Store::default()).await.unwrap();
        let target = store.call(Reserve { len: (5 * MIB) as u64 }).await.unwrap();
        let data = pattern(5 * MIB, 4);
        copy_to(vec![data.clone()], vec![target.clone()]).chunk_size(MIB).await.unwrap();
        assert_eq!(
            store.call(Inspect { buffer: Some(target), withdraw: false }).await.unwrap(),
            Fnv { hash: fnv(&data) }
        );
    });
}
