//! Limits, handshake and error cases, each one a typed error checked before allocation.

mod common;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use xoscar_wire::{
    Envelope, Frame, FrameDecoder, FrameEncoder, FrameKind, Handshake, Limits, MAGIC,
    PROTOCOL_VERSION, WireError, WriteBuf, pb,
};

use common::encode;

fn prefix(kind: u8, flags: u8, payloads: u16, envelope_len: u32) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u8(kind);
    b.put_u8(flags);
    b.put_u16_le(payloads);
    b.put_u32_le(envelope_len);
    b
}

#[test]
fn unknown_kind_and_reserved_flags_are_typed_errors() {
    let mut decoder = FrameDecoder::default();
    let err = decoder.decode(&mut prefix(0, 0, 0, 0)).unwrap_err();
    assert!(matches!(err, WireError::UnknownKind(0)), "{err}");
    let err = decoder.decode(&mut prefix(200, 0, 0, 0)).unwrap_err();
    assert!(matches!(err, WireError::UnknownKind(200)), "{err}");
    let err = decoder.decode(&mut prefix(1, 0x80, 0, 0)).unwrap_err();
    assert!(matches!(err, WireError::ReservedFlags { flags: 0x80, .. }), "{err}");
}

#[test]
fn oversized_envelope_is_refused_before_reserving() {
    let mut decoder = FrameDecoder::new(Limits::default().max_envelope_len(100));
    let mut src = prefix(1, 0, 0, u32::MAX);
    let err = decoder.decode(&mut src).unwrap_err();
    assert!(matches!(err, WireError::EnvelopeTooLarge { len, max: 100 } if len == u32::MAX as u64));
    assert!(src.capacity() < 1024, "reserved {} bytes", src.capacity());
}

#[test]
fn too_many_payloads_is_refused() {
    let mut decoder = FrameDecoder::new(Limits::default().max_payloads(2));
    let err = decoder.decode(&mut prefix(1, 0, 3, 0)).unwrap_err();
    assert!(matches!(err, WireError::TooManyPayloads { count: 3, max: 2 }));
}

#[test]
fn payload_total_is_checked_without_overflow() {
    let mut decoder = FrameDecoder::default();
    let mut src = prefix(1, 0, 2, 0);
    src.put_u64_le(u64::MAX);
    src.put_u64_le(u64::MAX);
    let err = decoder.decode(&mut src).unwrap_err();
    assert!(matches!(err, WireError::PayloadTooLarge { .. }), "{err}");
}

#[test]
fn large_frames_grow_the_buffer_only_as_bytes_arrive() {
    let ahead = 64 * 1024;
    let limits = Limits::default().max_reserve_ahead(ahead);
    let mut decoder = FrameDecoder::new(limits);
    // Announce a 200 MiB payload but send only the head.
    let mut src = prefix(1, 0, 1, 0);
    src.put_u64_le(200 << 20);
    assert!(decoder.decode(&mut src).unwrap().is_none());
    assert!(src.capacity() <= ahead + 64, "reserved {} bytes up front", src.capacity());

    // A real 8 MiB frame fed in 1 MiB steps decodes intact and the buffer never runs far ahead.
    let payload = Bytes::from(vec![0xAB; 8 << 20]);
    let wire = encode(Frame::request(1, Bytes::new(), vec![payload.clone()]), limits);
    let mut decoder = FrameDecoder::new(limits);
    let mut src = BytesMut::new();
    let mut frame = None;
    for chunk in wire.chunks(1 << 20) {
        src.extend_from_slice(chunk);
        if let Some(decoded) = decoder.decode(&mut src).unwrap() {
            frame = Some(decoded);
        } else {
            // Growth is geometric in the bytes that arrived (Vec doubling on top of ours).
            assert!(
                src.capacity() <= 4 * src.len().max(ahead),
                "{} for {}",
                src.capacity(),
                src.len()
            );
        }
    }
    assert_eq!(frame.unwrap().payloads[..], [payload]);
}

#[test]
fn truncated_stream_is_a_typed_error_and_clean_end_is_none() {
    let wire = encode(Frame::request(9, Bytes::from_static(b"h"), vec![]), Limits::default());
    let mut decoder = FrameDecoder::default();
    let mut partial = BytesMut::from(&wire[..wire.len() - 1]);
    let err = decoder.decode_eof(&mut partial).unwrap_err();
    assert!(matches!(err, WireError::Truncated { buffered } if buffered == wire.len() - 1));
    assert!(FrameDecoder::default().decode_eof(&mut BytesMut::new()).unwrap().is_none());
}

#[test]
fn malformed_envelope_names_the_kind() {
    let mut src = prefix(FrameKind::Ping as u8, 0, 0, 2);
    src.put_slice(&[0x08, 0xFF]); // varint that never ends
    let err = FrameDecoder::default().decode(&mut src).unwrap_err();
    assert!(matches!(err, WireError::MalformedEnvelope { kind: FrameKind::Ping, .. }), "{err}");
}

#[test]
fn encoder_refuses_frames_over_its_limits_and_queues_nothing() {
    let encoder = FrameEncoder::new(Limits::default().max_payload_len(10).max_payloads(1));
    let mut out = WriteBuf::new();
    let big = Frame::request(1, Bytes::new(), vec![Bytes::from(vec![0; 11])]);
    assert!(matches!(encoder.encode(big, &mut out), Err(WireError::PayloadTooLarge { .. })));
    let many = Frame::request(1, Bytes::new(), vec![Bytes::new(), Bytes::new()]);
    assert!(matches!(encoder.encode(many, &mut out), Err(WireError::TooManyPayloads { .. })));
    assert!(out.is_empty());
}

#[test]
fn payloads_are_not_copied() {
    let payload = Bytes::from(vec![1u8; 4096]);
    let mut out = WriteBuf::new();
    FrameEncoder::default()
        .encode(Frame::request(1, Bytes::new(), vec![payload.clone()]), &mut out)
        .unwrap();
    let mut slices = [std::io::IoSlice::new(&[]); 4];
    assert_eq!(out.chunks_vectored(&mut slices), 2);
    assert_eq!(slices[1].as_ptr(), payload.as_ptr(), "payload queued by reference");

    // Decoded payloads and header bytes are slices of the read buffer.
    let mut src = common::encode(
        Frame::request(1, Bytes::from_static(b"header"), vec![payload.clone()]),
        Limits::default(),
    );
    let buffer = src.as_ptr() as usize..src.as_ptr() as usize + src.len();
    let frame = FrameDecoder::default().decode(&mut src).unwrap().unwrap();
    let Envelope::Request(request) = &frame.envelope else { panic!("not a request") };
    assert_eq!(&request.header[..], b"header");
    assert_eq!(frame.payloads[..], [payload]);
    assert!(buffer.contains(&(request.header.as_ptr() as usize)));
    assert!(buffer.contains(&(frame.payloads[0].as_ptr() as usize)));
}

#[test]
fn small_payloads_travel_inside_the_head() {
    let mut out = WriteBuf::new();
    let encoder = FrameEncoder::default();
    let small = Bytes::from(vec![3u8; xoscar_wire::INLINE_PAYLOAD_MAX]);
    encoder.encode(Frame::request(1, Bytes::new(), vec![small.clone()]), &mut out).unwrap();
    encoder.encode(Frame::request(2, Bytes::new(), vec![small]), &mut out).unwrap();
    assert!(out.is_contiguous(), "two frames with small payloads make one chunk");
    let big = Bytes::from(vec![3u8; xoscar_wire::INLINE_PAYLOAD_MAX + 1]);
    encoder.encode(Frame::request(3, Bytes::new(), vec![big]), &mut out).unwrap();
    assert!(!out.is_contiguous());
    let frames: Vec<_> = {
        let mut wire = common::flatten(out);
        let mut decoder = FrameDecoder::default();
        std::iter::from_fn(|| decoder.decode(&mut wire).unwrap()).collect()
    };
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[2].payloads[0].len(), xoscar_wire::INLINE_PAYLOAD_MAX + 1);
}

#[test]
fn handshake_round_trips_and_reports_mismatches() {
    let ours = Handshake::new(pb::Hello {
        auth_proof: Bytes::from_static(b"p"),
        agent: "t".into(),
        auth_nonce: Bytes::from_static(b"n"),
        process: 0x0123_4567_89ab_cdef,
    });
    let mut wire = BytesMut::new();
    ours.encode(&mut wire);
    let limits = Limits::default();
    let mut partial = wire.split_to(5);
    assert_eq!(Handshake::decode(&mut partial, &limits).unwrap(), None);
    partial.unsplit(wire.clone());
    assert_eq!(Handshake::decode(&mut partial, &limits).unwrap(), Some(ours.clone()));

    let err =
        Handshake::decode(&mut BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]), &limits).unwrap_err();
    assert!(matches!(err, WireError::BadMagic { found, .. } if &found == b"GET "), "{err}");
    // A wrong first byte is reported before four bytes arrive.
    let err = Handshake::decode(&mut BytesMut::from(&b"G"[..]), &limits).unwrap_err();
    assert!(matches!(err, WireError::BadMagic { .. }));

    let mut future = BytesMut::new();
    future.put_slice(&MAGIC);
    future.put_u16_le(PROTOCOL_VERSION + 1);
    future.put_u16_le(0);
    future.put_u32_le(0);
    let err = Handshake::decode(&mut future, &limits).unwrap_err();
    assert!(
        matches!(err, WireError::VersionMismatch { ours, theirs } if ours == PROTOCOL_VERSION && theirs == PROTOCOL_VERSION + 1),
        "{err}"
    );

    let mut huge = BytesMut::new();
    huge.put_slice(&MAGIC);
    huge.put_u16_le(PROTOCOL_VERSION);
    huge.put_u16_le(0);
    huge.put_u32_le(u32::MAX);
    assert!(matches!(
        Handshake::decode(&mut huge, &limits),
        Err(WireError::EnvelopeTooLarge { .. })
    ));
    // A Hello just over MAX_HELLO_LEN is refused at its prefix, with nothing reserved for it,
    // even where frames may be far larger.
    let mut over = BytesMut::new();
    over.put_slice(&MAGIC);
    over.put_u16_le(PROTOCOL_VERSION);
    over.put_u16_le(0);
    over.put_u32_le(xoscar_wire::MAX_HELLO_LEN as u32 + 1);
    let capacity = over.capacity();
    let err = Handshake::decode(&mut over, &limits).unwrap_err();
    assert!(matches!(err, WireError::EnvelopeTooLarge { max: 1024, .. }), "{err}");
    assert_eq!(over.capacity(), capacity);
    // Where envelopes may be smaller than that, the Hello is held to their limit too: a
    // 22-byte Hello (a 20-byte agent, its key and length) fits 22, not 21.
    let hello = pb::Hello { agent: "a twenty-byte agent!".into(), ..Default::default() };
    let mut fitting = BytesMut::new();
    Handshake::new(hello).encode(&mut fitting);
    let mut too_long = fitting.clone();
    let (fits, tight) =
        (Limits::default().max_envelope_len(22), Limits::default().max_envelope_len(21));
    assert!(Handshake::decode(&mut fitting, &fits).unwrap().is_some());
    let err = Handshake::decode(&mut too_long, &tight).unwrap_err();
    assert!(matches!(err, WireError::EnvelopeTooLarge { len: 22, max: 21 }), "{err}");
}

proptest::proptest! {
    /// `admit` refuses exactly what `check_frame` refuses, with the same error, whatever the
    /// limits (tight ones make the bound on a call's envelope miss, so it is measured).
    #[test]
    fn admit_refuses_what_check_frame_refuses(
        frame in common::frame(),
        envelope in 0usize..120,
        payloads in 0usize..6,
        total in 0u64..1200,
    ) {
        let limits =
            Limits::default().max_envelope_len(envelope).max_payloads(payloads).max_payload_len(total);
        let admitted = limits.admit(&frame).map_err(|e| e.to_string());
        let checked = limits.check_frame(&frame).map(drop).map_err(|e| e.to_string());
        proptest::prop_assert_eq!(admitted, checked);
    }
}
