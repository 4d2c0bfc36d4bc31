//! The requests pools of one host send each other, as the sub pool layer needs them: where
//! this process dials a pool, untyped create, has and destroy, the routes a main pool tells
//! its sub pools, a sub pool's actor-gone notice, and reading a forwarded answer. Each goes
//! through this process's caller, over the pool's internal address when one is mapped; a pool
//! of this process is reached through its listener like any other (a forward never comes
//! straight back into the pool that forwards it).

use std::sync::Arc;

use xoscar_pool::Message;
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use super::client::{Place, create_at, place};
use crate::pb::{self, request::Kind};
use crate::wire::header::{self, Answer};
use crate::{ActorError, Placement};

/// Where this process dials the pool at `address`: its internal address when one is mapped
/// ([`crate::map_address`]), else the address itself.
pub fn endpoint_for(address: &Address) -> Result<Address, ActorError> {
    Ok(match place(address)? {
        (_, Place::Remote(endpoint)) => endpoint.into_owned(),
        (_, Place::Local(_)) => address.clone(),
    })
}

/// Creates an actor of the type registered as `type_name` through the pool at `address`
/// (this process's or another's) from its encoded init message, placed as `placement` says;
/// its uid and the address of the pool it landed in.
pub async fn create_registered_at(
    address: &Address,
    type_name: &str,
    init: Payloads,
    uid: Option<Arc<str>>,
    placement: &Placement,
) -> Result<(Arc<str>, Address), ActorError> {
    Box::pin(create_at(address, type_name, init, uid, placement)).await
}

/// Whether the pool at `at` itself holds the actor `uid` (it may answer with where it
/// lives instead, if it is a main pool: that counts as no).
pub async fn has_at(at: &Address, uid: &str) -> Result<bool, ActorError> {
    let has = Kind::Has(pb::Target { uid: uid.to_owned() });
    Ok(matches!(ask(at, has).await?, Answer::Done(done) if done.present))
}

/// Destroys the actor `uid` in the pool at `at`.
pub async fn destroy_at(at: &Address, uid: &str) -> Result<(), ActorError> {
    ask(at, Kind::Destroy(pb::Target { uid: uid.to_owned() })).await.map(drop)
}

/// Tells the main pool, at its internal socket `main`, that the actor `uid` left this sub
/// pool. Taken only from a sub pool's process, on that socket.
pub async fn tell_gone(main: &Address, uid: &str) -> Result<(), ActorError> {
    ask(main, Kind::Gone(pb::Target { uid: uid.to_owned() })).await.map(drop)
}

/// Tells the sub pool at `to` the routes (external, internal address) of its host's pools,
/// in place of the ones it was told before. Taken only from its main pool's process, on its
/// internal socket.
pub async fn send_routes(to: &Address, routes: &[(Address, Address)]) -> Result<(), ActorError> {
    let routes = routes
        .iter()
        .map(|(external, internal)| pb::Route {
            external: external.to_string(),
            internal: internal.to_string(),
        })
        .collect();
    ask(to, Kind::Routes(pb::Routes { routes })).await.map(drop)
}

/// The response a pool sends for a request that failed with `error`.
pub fn failure_response(error: &ActorError) -> Message {
    header::failure(error)
}

/// Whether `response`, from the pool at `at`, says the actor is not there.
pub fn is_not_found(response: &Message, at: &Address) -> bool {
    !response.header.is_empty()
        && matches!(header::answer(response.clone(), at), Err(ActorError::NotFound { .. }))
}

/// Sends a management request to the pool at `at` and reads its answer.
async fn ask(at: &Address, kind: Kind) -> Result<Answer, ActorError> {
    let request = Message::new(header::request(kind), Vec::new());
    let response =
        super::client::caller()?.call_with_timeout(&endpoint_for(at)?, request, None).await?;
    header::answer(response, at)
}
