//! [`ReceivedFrame`]: a frame as the decoder hands it out, the common kinds read in place.

use bytes::{Buf, Bytes};

use crate::{Envelope, Frame, FrameKind, Payloads, pb};

/// A decoded frame.
///
/// A call, an answer or a one-way message with at most one payload (nearly every frame) is
/// kept as the one buffer it arrived in, with its envelope's fields already read and checked
/// and where its header and payload lie: taking the frame off the read buffer costs one
/// reference count, and the value handed back is small. Read it through [`Self::kind`],
/// [`Self::request`], [`Self::response`] and [`Self::header`]; take its header and payloads
/// with [`Self::into_parts`], or the whole [`Frame`] with [`Self::into_frame`]. Any other
/// frame, and one that came as a value through an in-process channel, is held whole.
///
/// (Handing back a [`Frame`], whose header and payload are two buffers in a value of 104
/// bytes, the 64-byte encode and decode trip took 67 to 75 ns in pinned rounds; this value,
/// with the header and payload then taken out as a handler gets them, takes it in 53 to 57.
/// Most of the difference is the size of the value moved through the decoder's return:
/// docs/architecture.md, "What bounds the wire trip".)
///
/// ```
/// use bytes::{Buf, Bytes, BytesMut};
/// use xoscar_wire::{Frame, FrameDecoder, FrameEncoder, FrameKind, WriteBuf};
///
/// let frame = Frame::request(7, Bytes::from_static(b"hi"), [Bytes::from_static(b"abc")]);
/// let mut out = WriteBuf::new();
/// FrameEncoder::default().encode(frame.clone(), &mut out).unwrap();
/// let mut wire = BytesMut::new();
/// while out.has_remaining() {
///     let n = out.chunk().len();
///     wire.extend_from_slice(out.chunk());
///     out.advance(n);
/// }
///
/// let received = FrameDecoder::default().decode_received(&mut wire).unwrap().unwrap();
/// assert_eq!(received.kind(), FrameKind::Request);
/// assert_eq!(received.request().map(|request| request.id), Some(7));
/// assert_eq!(received.header(), b"hi");
/// let (header, payloads) = received.clone().into_parts();
/// assert_eq!((&header[..], &payloads[..]), (&b"hi"[..], &[Bytes::from_static(b"abc")][..]));
/// assert_eq!(received.into_frame(), frame);
/// ```
#[derive(Debug, Clone)]
pub struct ReceivedFrame(Repr);

#[derive(Debug, Clone)]
enum Repr {
    InPlace(InPlace),
    /// Boxed: held inline, a whole frame would make every received frame as large as itself.
    Whole(Box<Frame>),
}

/// A request, response or notify with at most one payload, read in place.
// Offsets are `u32` (the decoder reads in place only frames whose envelope ends within that)
// to keep the value at 72 bytes: in the prototypes, a value of about 88 bytes took the 64-byte
// trip to 57 to 68 ns where one of 72 took it to 38 to 51 (docs/architecture.md).
#[derive(Debug, Clone)]
pub(crate) struct InPlace {
    /// The whole frame: prefix, length table, envelope, payload.
    pub(crate) frame: Bytes,
    /// A request's or response's `id` (0 for a notify).
    pub(crate) id: u64,
    /// Field 3: a request's `timeout_us`, a response's `more` (0 for a notify).
    pub(crate) third: u64,
    /// A request's `stream_credit`, a response's `status`, as prost narrows them to 32 bits.
    pub(crate) last: u32,
    /// Where the header lies in `frame`.
    pub(crate) header_start: u32,
    pub(crate) header_end: u32,
    /// Where the payload starts in `frame` (it runs to the end), if `has_payload`.
    pub(crate) payload_start: u32,
    pub(crate) kind: FrameKind,
    /// One payload (perhaps empty) or none.
    pub(crate) has_payload: bool,
}

/// The fields of a request other than its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    /// The request id, which its response carries back.
    pub id: u64,
    /// How long the caller waits, in microseconds; 0 for no deadline.
    pub timeout_us: u64,
    /// Answers the caller takes before it must give credit; 0 for a plain call.
    pub stream_credit: u32,
}

/// The fields of a response other than its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// The id of the request answered.
    pub id: u64,
    /// More answers follow (a stream item).
    pub more: bool,
    /// A [`pb::response::Status`] value (unknown values are kept as sent).
    pub status: i32,
}

impl ReceivedFrame {
    pub(crate) fn in_place(frame: InPlace) -> Self {
        ReceivedFrame(Repr::InPlace(frame))
    }

    /// Which envelope the frame carries.
    #[inline]
    pub fn kind(&self) -> FrameKind {
        match &self.0 {
            Repr::InPlace(frame) => frame.kind,
            Repr::Whole(frame) => frame.envelope.kind(),
        }
    }

    /// A request's fields; `None` for other kinds.
    #[inline]
    pub fn request(&self) -> Option<RequestHead> {
        match &self.0 {
            Repr::InPlace(frame) if frame.kind == FrameKind::Request => Some(RequestHead {
                id: frame.id,
                timeout_us: frame.third,
                stream_credit: frame.last,
            }),
            Repr::Whole(frame) => match &frame.envelope {
                Envelope::Request(request) => Some(RequestHead {
                    id: request.id,
                    timeout_us: request.timeout_us,
                    stream_credit: request.stream_credit,
                }),
                _ => None,
            },
            Repr::InPlace(_) => None,
        }
    }

    /// A response's fields; `None` for other kinds.
    #[inline]
    pub fn response(&self) -> Option<ResponseHead> {
        match &self.0 {
            Repr::InPlace(frame) if frame.kind == FrameKind::Response => Some(ResponseHead {
                id: frame.id,
                more: frame.third != 0,
                status: frame.last as i32,
            }),
            Repr::Whole(frame) => match &frame.envelope {
                Envelope::Response(response) => Some(ResponseHead {
                    id: response.id,
                    more: response.more,
                    status: response.status,
                }),
                _ => None,
            },
            Repr::InPlace(_) => None,
        }
    }

    /// The application header of a request, response or notify; empty for other kinds.
    #[inline]
    pub fn header(&self) -> &[u8] {
        match &self.0 {
            Repr::InPlace(frame) => {
                &frame.frame[frame.header_start as usize..frame.header_end as usize]
            }
            Repr::Whole(frame) => match &frame.envelope {
                Envelope::Request(request) => &request.header,
                Envelope::Response(response) => &response.header,
                Envelope::Notify(notify) => &notify.header,
                _ => &[],
            },
        }
    }

    /// The header (as [`Self::header`]) and the payloads, as slices of the buffer the frame
    /// arrived in: no byte is copied.
    #[inline]
    pub fn into_parts(self) -> (Bytes, Payloads) {
        match self.0 {
            Repr::InPlace(frame) => frame.into_parts(),
            Repr::Whole(frame) => {
                let Frame { envelope, payloads } = *frame;
                let header = match envelope {
                    Envelope::Request(request) => request.header,
                    Envelope::Response(response) => response.header,
                    Envelope::Notify(notify) => notify.header,
                    _ => Bytes::new(),
                };
                (header, payloads)
            }
        }
    }

    /// The frame as a [`Frame`] value: the same frame the codec was given to write.
    pub fn into_frame(self) -> Frame {
        match self.0 {
            Repr::InPlace(frame) => {
                let (kind, id, third, last) = (frame.kind, frame.id, frame.third, frame.last);
                let (header, payloads) = frame.into_parts();
                let envelope = match kind {
                    FrameKind::Request => Envelope::Request(pb::Request {
                        id,
                        header,
                        timeout_us: third,
                        stream_credit: last,
                    }),
                    FrameKind::Response => Envelope::Response(pb::Response {
                        id,
                        header,
                        more: third != 0,
                        status: last as i32,
                    }),
                    _ => Envelope::Notify(pb::Notify { header }),
                };
                Frame { envelope, payloads }
            }
            Repr::Whole(frame) => *frame,
        }
    }
}

impl InPlace {
    /// The header and payloads: without a payload the header takes the frame's count, and
    /// with one the payload does (the header, if any, takes one of its own).
    #[inline]
    fn into_parts(self) -> (Bytes, Payloads) {
        let InPlace { mut frame, header_start, header_end, payload_start, has_payload, .. } = self;
        let (header_start, header_end) = (header_start as usize, header_end as usize);
        match (has_payload, header_start == header_end) {
            (false, true) => (Bytes::new(), Payloads::new()),
            (false, false) => {
                frame.truncate(header_end);
                frame.advance(header_start);
                (frame, Payloads::new())
            }
            (true, true) => {
                frame.advance(payload_start as usize);
                (Bytes::new(), Payloads::from([frame]))
            }
            (true, false) => {
                let header = frame.slice(header_start..header_end);
                frame.advance(payload_start as usize);
                (header, Payloads::from([frame]))
            }
        }
    }
}

impl PartialEq<Frame> for ReceivedFrame {
    /// Whether this reads as `frame`: what [`Self::into_frame`] would give equals it.
    fn eq(&self, frame: &Frame) -> bool {
        let in_place = match &self.0 {
            Repr::Whole(whole) => return **whole == *frame,
            Repr::InPlace(in_place) => in_place,
        };
        let payload =
            in_place.has_payload.then(|| &in_place.frame[in_place.payload_start as usize..]);
        let payloads_equal = match (payload, &frame.payloads[..]) {
            (None, []) => true,
            (Some(payload), [other]) => payload == &other[..],
            _ => false,
        };
        let fields_equal = match &frame.envelope {
            Envelope::Request(request) => {
                self.request()
                    == Some(RequestHead {
                        id: request.id,
                        timeout_us: request.timeout_us,
                        stream_credit: request.stream_credit,
                    })
                    && self.header() == &request.header[..]
            }
            Envelope::Response(response) => {
                self.response()
                    == Some(ResponseHead {
                        id: response.id,
                        more: response.more,
                        status: response.status,
                    })
                    && self.header() == &response.header[..]
            }
            Envelope::Notify(notify) => {
                in_place.kind == FrameKind::Notify && self.header() == &notify.header[..]
            }
            _ => false,
        };
        payloads_equal && fields_equal
    }
}

impl From<Frame> for ReceivedFrame {
    /// A frame held whole, as an in-process channel delivers it.
    fn from(frame: Frame) -> Self {
        ReceivedFrame(Repr::Whole(Box::new(frame)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_frame_is_no_larger_than_its_in_place_form() {
        assert_eq!(std::mem::size_of::<ReceivedFrame>(), std::mem::size_of::<InPlace>());
        assert!(std::mem::size_of::<ReceivedFrame>() <= 72);
    }

    #[test]
    fn a_frame_held_whole_reads_as_it_was_written() {
        let header = Bytes::from_static(b"head");
        let payload = Bytes::from_static(b"body");
        let request =
            pb::Request { id: 3, header: header.clone(), timeout_us: 9, stream_credit: 2 };
        let frame = Frame::new(Envelope::Request(request), [payload.clone()]);
        let received = ReceivedFrame::from(frame.clone());
        assert_eq!(received.kind(), FrameKind::Request);
        let head = RequestHead { id: 3, timeout_us: 9, stream_credit: 2 };
        assert_eq!(received.request(), Some(head));
        assert_eq!(received.response(), None);
        assert_eq!(received.header(), b"head");
        assert_eq!(received.clone().into_parts(), (header, Payloads::from([payload])));
        assert_eq!(received.into_frame(), frame);

        let ping = ReceivedFrame::from(Frame::new(Envelope::Ping(pb::Ping { nonce: 1 }), []));
        assert_eq!((ping.kind(), ping.header(), ping.request()), (FrameKind::Ping, &[][..], None));
        assert_eq!(ping.into_parts(), (Bytes::new(), Payloads::new()));
    }
}
