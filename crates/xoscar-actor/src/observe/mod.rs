//! Observability: the `metrics` facade names and helpers, the slow-call and hold
//! thresholds, and the optional Prometheus endpoint.
//!
//! Uses only the error module.

pub(crate) mod debug;
pub mod metrics;
#[cfg(feature = "prometheus")]
pub(crate) mod prometheus;
