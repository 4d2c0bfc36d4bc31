//! A raw caller: speaks the wire protocol by hand over a socket, as a peer in another process
//! (or one claiming to be in ours) would, for tests that look at what a server writes and when.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use xoscar_wire::{
    Envelope, Frame, FrameDecoder, FrameEncoder, Handshake, Limits, Payloads, WriteBuf, pb,
};

/// Exchanges handshakes over `raw` as a caller whose `Hello` carries `mark(the server's
/// mark)`, sends `requests` in one write, and reads until one answer per request came, calling
/// `answered(n)` as the `n`th comes (from 1). Returns the answers' frames in the order they
/// came. Panics if the server closes first.
pub async fn run_of_requests<S>(
    raw: &mut S,
    mark: impl FnOnce(u64) -> u64,
    requests: Vec<Frame>,
    mut answered: impl FnMut(usize),
) -> Vec<Frame>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut read = BytesMut::new();
    let theirs = loop {
        if let Some(theirs) = Handshake::decode(&mut read, &Limits::default()).unwrap() {
            break theirs;
        }
        assert!(raw.read_buf(&mut read).await.unwrap() > 0, "the server's handshake");
    };
    let hello = pb::Hello { process: mark(theirs.hello.process), ..Default::default() };
    let mut ours = BytesMut::new();
    Handshake::new(hello).encode(&mut ours);
    raw.write_all(&ours).await.unwrap();

    let (encoder, mut out) = (FrameEncoder::default(), WriteBuf::new());
    let count = requests.len();
    for request in requests {
        encoder.encode(request, &mut out).unwrap();
    }
    raw.write_all_buf(&mut out).await.unwrap();

    let (mut decoder, mut answers) = (FrameDecoder::default(), Vec::with_capacity(count));
    while answers.len() < count {
        while let Some(frame) = decoder.decode(&mut read).unwrap() {
            if matches!(frame.envelope, Envelope::Response(_)) {
                answers.push(frame);
                answered(answers.len());
            }
        }
        if answers.len() < count {
            assert!(raw.read_buf(&mut read).await.unwrap() > 0, "the server closed");
        }
    }
    answers
}

/// The answer to request `id` among `answers`: its response envelope and its payloads.
pub fn answer_to(answers: &[Frame], id: u64) -> (&pb::Response, &Payloads) {
    answers
        .iter()
        .find_map(|frame| match &frame.envelope {
            Envelope::Response(response) if response.id == id => Some((response, &frame.payloads)),
            _ => None,
        })
        .expect("the request was answered")
}
