//! The actor layer's headers (`proto/xoscar/actor/v1/actor.proto`) inside pool messages.

use bytes::Bytes;
use prost::Message as _;
use xoscar_pool::Message;
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use crate::ActorError;
use crate::pb::{self, ErrorKind};

/// A request header.
pub(crate) fn request(kind: pb::request::Kind) -> Bytes {
    pb::Request { kind: Some(kind) }.encode_to_vec().into()
}

/// Success with a body: no header bytes at all.
pub(crate) fn success(body: Payloads) -> Message {
    Message::new(Bytes::new(), body)
}

/// Success with a detail and no body.
pub(crate) fn done(done: pb::Done) -> Message {
    let reply = pb::Reply { outcome: Some(pb::reply::Outcome::Done(done)) };
    Message::new(reply.encode_to_vec(), Vec::new())
}

/// A failure, as the remote caller will rebuild it.
pub(crate) fn failure(error: &ActorError) -> Message {
    let reply = pb::Reply { outcome: Some(pb::reply::Outcome::Failure(describe(error))) };
    Message::new(reply.encode_to_vec(), Vec::new())
}

/// The wire form of `error`.
pub(crate) fn describe(error: &ActorError) -> pb::Failure {
    let mut failure = pb::Failure { pid: std::process::id(), ..Default::default() };
    let kind = match error {
        ActorError::NotFound { address, uid } => {
            (failure.address, failure.uid) = (address.clone(), uid.clone());
            ErrorKind::NotFound
        }
        ActorError::AlreadyExists { address, uid } => {
            (failure.address, failure.uid) = (address.clone(), uid.clone());
            ErrorKind::AlreadyExists
        }
        ActorError::UnknownType { address, type_name } => {
            (failure.address, failure.uid) = (address.clone(), type_name.clone());
            ErrorKind::UnknownType
        }
        ActorError::NoHandler { address, uid, actor_type, message } => {
            (failure.address, failure.uid) = (address.clone(), uid.clone());
            (failure.actor_type, failure.message) = (actor_type.clone(), message.clone());
            ErrorKind::NoHandler
        }
        ActorError::BadMessage { address, detail } => {
            (failure.address, failure.message) = (address.clone(), detail.clone());
            ErrorKind::BadMessage
        }
        ActorError::Handler { address, pid, actor_type, uid, message, .. } => {
            (failure.address, failure.pid, failure.uid) = (address.clone(), *pid, uid.clone());
            (failure.actor_type, failure.message) = (actor_type.clone(), message.clone());
            ErrorKind::Handler
        }
        ActorError::HandlerPanicked { address, pid, actor_type, uid, message } => {
            (failure.address, failure.pid, failure.uid) = (address.clone(), *pid, uid.clone());
            (failure.actor_type, failure.message) = (actor_type.clone(), message.clone());
            ErrorKind::HandlerPanicked
        }
        ActorError::Stopped { address, uid } => {
            (failure.address, failure.uid) = (address.clone(), uid.clone());
            ErrorKind::Stopped
        }
        ActorError::Cancelled { address, uid } => {
            (failure.address, failure.uid) = (address.clone(), uid.clone());
            ErrorKind::Cancelled
        }
        ActorError::Placement { address, reason } => {
            (failure.address, failure.message) = (address.clone(), reason.clone());
            ErrorKind::Placement
        }
        ActorError::Buffer { address, buffer, offset, reason } => {
            (failure.address, failure.message) = (address.clone(), reason.clone());
            (failure.buffer, failure.offset) = (*buffer, *offset);
            ErrorKind::Buffer
        }
        // Raised by something a handler did (it called on and that failed): the handler's
        // failure, in words.
        other => {
            failure.message = other.to_string();
            ErrorKind::Handler
        }
    };
    failure.kind = kind.into();
    failure
}

/// What a successful response carried.
pub(crate) enum Answer {
    Body(Payloads),
    Done(pb::Done),
}

/// Reads a response from `endpoint`: an answer, or the failure it carries.
pub(crate) fn answer(response: Message, endpoint: &Address) -> Result<Answer, ActorError> {
    let Message { header, payloads } = response;
    if header.is_empty() {
        return Ok(Answer::Body(payloads));
    }
    let bad = |detail: String| ActorError::BadReply { address: endpoint.to_string(), detail };
    let reply = pb::Reply::decode(header).map_err(|e| bad(format!("response header: {e}")))?;
    match reply.outcome {
        Some(pb::reply::Outcome::Done(done)) => Ok(Answer::Done(done)),
        Some(pb::reply::Outcome::Failure(failure)) => Err(rebuild(failure, endpoint)),
        None => Err(bad("a response header with no outcome".to_owned())),
    }
}

/// The error a remote failure describes (located at `endpoint` when it names no address).
pub(crate) fn rebuild(failure: pb::Failure, endpoint: &Address) -> ActorError {
    let pb::Failure { kind, message, address, pid, actor_type, uid, buffer, offset } = failure;
    let address = if address.is_empty() { endpoint.to_string() } else { address };
    match ErrorKind::try_from(kind).unwrap_or(ErrorKind::Unspecified) {
        ErrorKind::NotFound => ActorError::NotFound { address, uid },
        ErrorKind::AlreadyExists => ActorError::AlreadyExists { address, uid },
        ErrorKind::UnknownType => ActorError::UnknownType { address, type_name: uid },
        ErrorKind::NoHandler => ActorError::NoHandler { address, uid, actor_type, message },
        ErrorKind::BadMessage | ErrorKind::BadRequest => {
            ActorError::BadMessage { address, detail: message }
        }
        ErrorKind::HandlerPanicked => {
            ActorError::HandlerPanicked { address, pid, actor_type, uid, message }
        }
        ErrorKind::Stopped => ActorError::Stopped { address, uid },
        ErrorKind::Cancelled => ActorError::Cancelled { address, uid },
        ErrorKind::Buffer => ActorError::Buffer { address, buffer, offset, reason: message },
        ErrorKind::Placement => ActorError::Placement { address, reason: message },
        ErrorKind::Handler | ErrorKind::Unspecified => {
            ActorError::Handler { address, pid, actor_type, uid, message, source: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever bytes a response header holds, reading it gives an answer or an error, never a
    /// panic; likewise the hand-written request header reader.
    #[test]
    fn arbitrary_headers_never_panic() {
        let endpoint: Address = "inproc://anywhere".parse().unwrap();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..20_000 {
            let len = round % 40;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let response = Message::new(bytes.clone(), Vec::new());
            let _ = answer(response, &endpoint);
            let _ = crate::delivery::decode(&bytes);
        }
    }
}
