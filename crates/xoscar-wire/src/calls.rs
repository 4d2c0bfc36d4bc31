//! The two envelopes on every call's path as frames carry them: [`pb::Request`] and
//! [`pb::Response`] with their header a [`Header`], so that a short one read off the wire is
//! held inline rather than as a second reference into the read buffer.

use crate::{Header, pb};

/// Kind 1: a request that expects a response with the same id. The fields are
/// [`pb::Request`]'s, which documents them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Request {
    /// Chosen by the caller, unique among the requests in flight on one connection.
    pub id: u64,
    /// Opaque to the wire and the pool.
    pub header: Header,
    /// The caller's time budget in microseconds when it sent the request; 0: none.
    pub timeout_us: u64,
    /// Non-zero: the caller opens a response stream with this much credit.
    pub stream_credit: u32,
}

/// Kind 2: the answer to the request with the same id. The fields are [`pb::Response`]'s,
/// which documents them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Response {
    /// The id of the request this answers.
    pub id: u64,
    /// With status OK, the handler's opaque header; otherwise a detail in UTF-8.
    pub header: Header,
    /// True: one item of a response stream; more with this id follow.
    pub more: bool,
    /// A [`pb::response::Status`]: OK unless the serving side itself ended the request.
    pub status: i32,
}

impl Response {
    /// The status, as its enum ([`pb::response::Status::default`] for an unknown value, as
    /// prost's own accessor).
    pub fn status(&self) -> pb::response::Status {
        pb::response::Status::try_from(self.status).unwrap_or_default()
    }
}

impl From<pb::Request> for Request {
    /// Its header held inline when short (see [`Header::inline_or_shared`]).
    fn from(request: pb::Request) -> Self {
        let pb::Request { id, header, timeout_us, stream_credit } = request;
        Request { id, header: Header::inline_or_shared(header), timeout_us, stream_credit }
    }
}

impl From<Request> for pb::Request {
    /// Its header as a `Bytes` ([`Header::into_bytes`]: a copy of an inline one).
    fn from(request: Request) -> Self {
        let Request { id, header, timeout_us, stream_credit } = request;
        pb::Request { id, header: header.into_bytes(), timeout_us, stream_credit }
    }
}

impl From<pb::Response> for Response {
    /// Its header held inline when short (see [`Header::inline_or_shared`]).
    fn from(response: pb::Response) -> Self {
        let pb::Response { id, header, more, status } = response;
        Response { id, header: Header::inline_or_shared(header), more, status }
    }
}

impl From<Response> for pb::Response {
    /// Its header as a `Bytes` ([`Header::into_bytes`]: a copy of an inline one).
    fn from(response: Response) -> Self {
        let Response { id, header, more, status } = response;
        pb::Response { id, header: header.into_bytes(), more, status }
    }
}
