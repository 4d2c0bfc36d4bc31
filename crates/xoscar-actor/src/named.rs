//! Calls by message name with an encoded body ([`call_named`]): for callers that know an actor
//! only by the names its type declared in [`crate::Actor::remote_messages`] and speak its
//! messages as bytes (another language's bindings, a gateway). The actor decodes the body as
//! it would a remote caller's, in this process too.
//!
//! Uses the call module (where a pool is), the service (a pool of this process answers as its
//! server would) and the wire headers.

use bytes::{Bytes, BytesMut};
use xoscar_pool::Message;
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use crate::ActorError;
use crate::call::client::{Place, place};
use crate::service::{Ingress, Service};
use crate::wire::delivery::{self, Delivery};
use crate::wire::header::{self, Answer};

/// Calls the actor `uid` of the pool at `address` with the message its type declared under
/// `message` (in [`crate::Actor::remote_messages`]), `body` being that message's protobuf
/// encoding; gives the reply's protobuf encoding. An actor of a pool of this process gets it
/// as a remote caller's would (decoded by its table), with no socket; a main pool forwards it
/// to the sub pool holding the actor. A name the actor type did not declare is
/// [`ActorError::NoHandler`]; a body that does not decode, [`ActorError::BadMessage`].
///
/// ```no_run
/// # async fn demo(address: xoscar_transport::Address) -> Result<(), xoscar_actor::ActorError> {
/// // Add { n: 5 } is field 1 (int64) = 5: bytes 0x08 0x05.
/// let reply = xoscar_actor::call_named(&address, "counter", "Add", vec![8, 5].into()).await?;
/// # Ok(()) }
/// ```
pub async fn call_named(
    address: &Address,
    uid: &str,
    message: &str,
    body: Bytes,
) -> Result<Bytes, ActorError> {
    let head = delivery::encode(Delivery { tell: false, uid, message, hops: 0 });
    let request = Message::new(head, Payloads::from([body]));
    let (response, endpoint) = match place(address)? {
        (_, Place::Local(core)) => {
            // As this pool's server would take it from a caller that may call and no more.
            let service = Service { core, ingress: Ingress::Public };
            (xoscar_pool::Handler::call(&service, request).await, address.clone())
        }
        (client, Place::Remote(endpoint)) => {
            let endpoint = endpoint.into_owned();
            (client.pool.call(&endpoint, request).await?, endpoint)
        }
    };
    match header::answer(response, &endpoint)? {
        Answer::Body(payloads) => Ok(join(payloads)),
        Answer::Done(_) => Err(ActorError::BadReply {
            address: endpoint.to_string(),
            detail: "an answer with no body".to_owned(),
        }),
    }
}

/// The payloads as one `Bytes` (no copy when there is one).
fn join(payloads: Payloads) -> Bytes {
    match payloads.len() {
        0 => Bytes::new(),
        1 => payloads[0].clone(),
        _ => {
            let mut joined = BytesMut::with_capacity(payloads.iter().map(|p| p.len()).sum());
            for part in payloads.iter() {
                joined.extend_from_slice(part);
            }
            joined.freeze()
        }
    }
}
