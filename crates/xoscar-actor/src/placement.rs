//! [`Placement`]: where a create asks for its actor among a main pool and its sub pools, and
//! how that travels in a create request. The choosing is the sub pool layer's.
//!
//! Uses only the wire structs.

use xoscar_transport::Address;

use crate::pb::{self, placement::Target};

/// Where a create sent to a main pool puts the actor ([`crate::CreateRemoteActor::placement`]).
/// Every choice but [`Placement::Here`] is made by the main pool, so that parallel creates
/// see each other.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Placement {
    /// In the pool the create is sent to.
    #[default]
    Here,
    /// In the pool at this address: the main pool's own or one of its sub pools' (any other is
    /// [`crate::ActorError::Placement`]; a pool never dials an address a peer names).
    Address(Address),
    /// In the sub pool with this index.
    SubPool(usize),
    /// In a sub pool picked at random.
    RandomSubPool,
    /// In a pool (the main one or a sub pool) with this label, picked at random.
    Label(String),
    /// In a pool with this label that no other `IdleLabel` create holds (the first free one,
    /// the main pool before its sub pools). The hold lasts until that actor is destroyed
    /// (through any ref), its sub pool restarts without it, or the create is dropped before it
    /// ended. None free is [`crate::ActorError::Placement`].
    IdleLabel(String),
}

impl Placement {
    pub(crate) fn to_wire(&self) -> Option<pb::Placement> {
        let target = match self {
            Placement::Here => return None,
            Placement::Address(address) => Target::Address(address.to_string()),
            Placement::SubPool(index) => Target::SubPool(u32::try_from(*index).unwrap_or(u32::MAX)),
            Placement::RandomSubPool => Target::RandomSubPool(true),
            Placement::Label(label) => Target::Label(label.clone()),
            Placement::IdleLabel(label) => Target::IdleLabel(label.clone()),
        };
        Some(pb::Placement { target: Some(target) })
    }

    pub(crate) fn from_wire(placement: Option<pb::Placement>) -> Result<Self, String> {
        Ok(match placement.and_then(|placement| placement.target) {
            None => Placement::Here,
            Some(Target::Address(address)) => {
                Placement::Address(address.parse().map_err(|e| format!("placement address: {e}"))?)
            }
            Some(Target::SubPool(index)) => Placement::SubPool(index as usize),
            Some(Target::RandomSubPool(_)) => Placement::RandomSubPool,
            Some(Target::Label(label)) => Placement::Label(label),
            Some(Target::IdleLabel(label)) => Placement::IdleLabel(label),
        })
    }
}
