//! The actor layer's wire headers: the request and reply headers (the hot call/tell header
//! hand-encoded, the rest prost), message bodies, and how errors travel.
//!
//! Uses only the error module and the generated wire structs.

pub(crate) mod body;
pub(crate) mod codec;
pub(crate) mod delivery;
pub(crate) mod header;
