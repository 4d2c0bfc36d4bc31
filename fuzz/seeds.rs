//! Writes the seed corpora of the actor-layer fuzz targets from real traffic: every kind of
//! request the actor client sends (call, tell, batch, stream, create, has, destroy, resolve),
//! recorded by a pool-level server, then written in each target's input format. Run it from
//! the repository root: `cargo run --manifest-path fuzz/Cargo.toml --bin seeds`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes};
use xoscar_actor::{ActorRef, actor_ref, create_actor, destroy_actor, has_actor};
use xoscar_fuzz::{Count, Note, Target};
use xoscar_pool::{Handler, Message, ServerConfig, serve};
use xoscar_transport::{Address, TransportConfig, listen};
use xoscar_wire::{Frame, FrameEncoder, WriteBuf};

/// Keeps every request's header and payloads; answers with an empty message.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(Bytes, Vec<Bytes>)>>>);

impl Handler for Recorder {
    async fn call(&self, request: Message) -> Message {
        let payloads = request.payloads.iter().cloned().collect();
        self.0.lock().unwrap().push((request.header.clone(), payloads));
        Message::new(Bytes::new(), Vec::new())
    }
}

fn frame_bytes(frames: &[Frame]) -> Vec<u8> {
    let mut out = WriteBuf::new();
    for frame in frames {
        FrameEncoder::default().encode(frame.clone(), &mut out).unwrap();
    }
    let mut bytes = Vec::new();
    while out.has_remaining() {
        let chunk = out.chunk().to_vec();
        out.advance(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    bytes
}

/// The `actor_requests` input for a header and payloads: a cut byte, the header, the payloads
/// joined by 0xFF.
fn request_input(header: &[u8], payloads: &[Bytes]) -> Vec<u8> {
    let body = payloads.iter().map(|p| p.to_vec()).collect::<Vec<_>>().join(&0xFF);
    let rest = header.len() + body.len();
    let cut = (0..=255u8).find(|&c| rest * usize::from(c) / 256 == header.len());
    let Some(cut) = cut else { return Vec::new() };
    let mut input = vec![cut];
    input.extend_from_slice(header);
    input.extend_from_slice(&body);
    input
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let recorder = Recorder::default();
    let listener = listen(&Address::inproc("seeds"), &TransportConfig::default()).await.unwrap();
    let server = serve(listener, recorder.clone(), ServerConfig::default()).unwrap();
    let at = server.local_addr().clone();
    let target = ActorRef::<Target>::new(at.clone(), "t");
    let note = Note { n: 42, text: "seed".into(), data: vec![1, 2, 3] };
    let bound = Duration::from_secs(2);
    // Each fails (the recorder answers nothing sensible); what matters is what was sent.
    let _ = tokio::time::timeout(bound, target.call(note.clone())).await;
    let _ = tokio::time::timeout(bound, target.tell(note.clone())).await;
    let _ = tokio::time::timeout(bound, target.call_batch(vec![note.clone(), note.clone()])).await;
    let _ = tokio::time::timeout(bound, target.call_stream(Count { count: 3 })).await;
    let _ = tokio::time::timeout(bound, create_actor::<Target>(&at, "Target", &note)).await;
    let _ = tokio::time::timeout(bound, has_actor(&target)).await;
    let _ = tokio::time::timeout(bound, destroy_actor(&target)).await;
    let _ = tokio::time::timeout(bound, actor_ref::<Target>(&at, "t")).await;

    let recorded = recorder.0.lock().unwrap().clone();
    assert!(recorded.len() >= 7, "only {} requests were recorded", recorded.len());
    let requests = std::path::Path::new("fuzz/corpus/actor_requests");
    let streams = std::path::Path::new("fuzz/corpus/hostile_stream");
    std::fs::create_dir_all(requests).unwrap();
    std::fs::create_dir_all(streams).unwrap();
    let mut all = Vec::new();
    for (k, (header, payloads)) in recorded.iter().enumerate() {
        let input = request_input(header, payloads);
        if !input.is_empty() {
            std::fs::write(requests.join(format!("seed-{k}")), input).unwrap();
        }
        let frame = Frame::request(k as u64 + 1, header.clone(), payloads.clone());
        all.push(frame.clone());
        std::fs::write(streams.join(format!("seed-{k}")), frame_bytes(&[frame])).unwrap();
    }
    std::fs::write(streams.join("seed-all"), frame_bytes(&all)).unwrap();
    println!("wrote {} seeds of each", recorded.len());
}
