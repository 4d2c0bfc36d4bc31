//! The actor layer's headers (`proto/xoscar/actor/v1/actor.proto`) inside pool messages.

use bytes::Bytes;
use prost::Message as _;
use xoscar_pool::Message;
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use std::sync::Arc;
use std::time::Duration;

use xoscar_pool::PoolError;
use xoscar_transport::TransportError;

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
        ActorError::Forbidden { address, reason } => {
            (failure.address, failure.message) = (address.clone(), reason.clone());
            ErrorKind::Forbidden
        }
        ActorError::Buffer { address, buffer, offset, reason } => {
            (failure.address, failure.message) = (address.clone(), reason.clone());
            (failure.buffer, failure.offset) = (*buffer, *offset);
            ErrorKind::Buffer
        }
        ActorError::CallTimedOut { address, uid, timeout } => {
            (failure.address, failure.uid) = (address.clone(), uid.clone());
            failure.micros = micros(*timeout);
            ErrorKind::CallTimedOut
        }
        ActorError::WrongType { address, uid, expected, actual } => {
            (failure.address, failure.uid) = (address.clone(), uid.clone());
            (failure.actor_type, failure.message) = (actual.clone(), expected.clone());
            ErrorKind::WrongType
        }
        ActorError::NotRemote { address, actor_type, message } => {
            (failure.address, failure.actor_type) = (address.clone(), actor_type.clone());
            failure.message = message.clone();
            ErrorKind::NotRemote
        }
        ActorError::BadReply { address, detail } => {
            (failure.address, failure.message) = (address.clone(), detail.clone());
            ErrorKind::BadReply
        }
        // A pool on the way (a main pool forwarding) could not reach the next one: passed on
        // as the same pool error, so the caller sees what a direct call would have.
        ActorError::Connection(error) => {
            failure.address = error.address().unwrap_or_default().to_owned();
            failure.message = error.to_string();
            failure.pool_kind = error.kind().to_owned();
            failure.retry_safe = error.is_retry_safe();
            failure.micros = match error {
                PoolError::ConnectionTimedOut { silent_for, .. } => micros(*silent_for),
                PoolError::CallTimedOut { timeout, .. } => micros(*timeout),
                _ => 0,
            };
            ErrorKind::Connection
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
    let pb::Failure {
        kind,
        message,
        address,
        pid,
        actor_type,
        uid,
        buffer,
        offset,
        retry_safe,
        micros,
        pool_kind,
    } = failure;
    let address = if address.is_empty() { endpoint.to_string() } else { address };
    let duration = Duration::from_micros(micros);
    match ErrorKind::try_from(kind).unwrap_or(ErrorKind::Unspecified) {
        ErrorKind::CallTimedOut => ActorError::CallTimedOut { address, uid, timeout: duration },
        ErrorKind::WrongType => {
            ActorError::WrongType { address, uid, expected: message, actual: actor_type }
        }
        ErrorKind::NotRemote => ActorError::NotRemote { address, actor_type, message },
        ErrorKind::BadReply => ActorError::BadReply { address, detail: message },
        ErrorKind::Connection => {
            ActorError::Connection(relayed(&pool_kind, address, message, retry_safe, duration))
        }
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
        ErrorKind::Forbidden => ActorError::Forbidden { address, reason: message },
        ErrorKind::Handler | ErrorKind::Unspecified => {
            ActorError::Handler { address, pid, actor_type, uid, message, source: None }
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The pool error a pool on the way reported, as the caller would have got it directly.
fn relayed(
    kind: &str,
    address: String,
    text: String,
    retry_safe: bool,
    time: Duration,
) -> PoolError {
    let sent = !retry_safe;
    match kind {
        "connect" => {
            let source = TransportError::Io {
                operation: "connect to",
                address: address.clone(),
                source: std::io::Error::other(text),
            };
            PoolError::Connect { address, source: Arc::new(source) }
        }
        "dial_aborted" => PoolError::DialAborted { address },
        "connection_timed_out" => PoolError::ConnectionTimedOut { address, silent_for: time, sent },
        "call_timed_out" => PoolError::CallTimedOut { address, timeout: time },
        "cancelled" => PoolError::Cancelled { address, sent },
        "handler_panicked" => PoolError::HandlerPanicked { address, message: Some(text) },
        "response_too_large" => PoolError::ResponseTooLarge { address, reason: text },
        "refused" | "message_too_large" if retry_safe => PoolError::Refused {
            address,
            reason: "a pool on the way refused it (too many streams, or over the frame limits)",
        },
        // connection_lost, and anything a newer peer reports.
        _ => PoolError::ConnectionLost { address, reason: text, sent, source: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error a pool answers with comes back as the same variant, with its fields, and a
    /// pool error keeps its kind and whether a retry is safe.
    #[test]
    fn errors_keep_their_kind_across_the_wire() {
        let endpoint: Address = "inproc://far".parse().unwrap();
        let (address, uid) = ("inproc://near".to_owned(), "u".to_owned());
        let errors = [
            ActorError::CallTimedOut {
                address: address.clone(),
                uid: uid.clone(),
                timeout: Duration::from_millis(1500),
            },
            ActorError::WrongType {
                address: address.clone(),
                uid: uid.clone(),
                expected: "A".into(),
                actual: "B".into(),
            },
            ActorError::NotRemote {
                address: address.clone(),
                actor_type: "A".into(),
                message: "M".into(),
            },
            ActorError::BadReply { address: address.clone(), detail: "garbled".into() },
            ActorError::Forbidden { address: address.clone(), reason: "no".into() },
        ];
        for error in errors {
            let rebuilt = rebuild(describe(&error), &endpoint);
            assert_eq!(format!("{rebuilt:?}"), format!("{error:?}"));
        }
        let pool_errors = [
            PoolError::ConnectionLost {
                address: address.clone(),
                reason: "reset".into(),
                sent: true,
                source: None,
            },
            PoolError::ConnectionLost {
                address: address.clone(),
                reason: "reset".into(),
                sent: false,
                source: None,
            },
            PoolError::ConnectionTimedOut {
                address: address.clone(),
                silent_for: Duration::from_secs(3),
                sent: true,
            },
            PoolError::CallTimedOut {
                address: address.clone(),
                timeout: Duration::from_millis(20),
            },
            PoolError::Cancelled { address: address.clone(), sent: false },
            PoolError::DialAborted { address: address.clone() },
            PoolError::HandlerPanicked { address: address.clone(), message: Some("boom".into()) },
            PoolError::ResponseTooLarge { address: address.clone(), reason: "2 MiB".into() },
            PoolError::Connect {
                address: address.clone(),
                source: Arc::new(TransportError::ConnectionRefused { address: address.clone() }),
            },
        ];
        for error in pool_errors {
            let rebuilt = rebuild(describe(&ActorError::Connection(error.clone())), &endpoint);
            let ActorError::Connection(rebuilt) = rebuilt else { panic!("{rebuilt:?}") };
            assert_eq!(rebuilt.kind(), error.kind(), "{error}");
            assert_eq!(rebuilt.is_retry_safe(), error.is_retry_safe(), "{error}");
            assert_eq!(rebuilt.address(), error.address(), "{error}");
        }
    }

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
            let _ = crate::wire::delivery::decode(&bytes);
        }
    }
}
