//! Debug thresholds (xoscar's debug options): log calls that took long, and serial actors held
//! long by one handler, naming the actor, the message type and the time.

use std::time::Duration;

use tokio::time::Instant;
use xoscar_pool::{ConfigError, env_seconds};

/// Environment variable for [`crate::ActorPoolBuilder::slow_call_threshold`], in seconds
/// (e.g. `0.5`).
pub const ENV_SLOW_CALL: &str = "XOSCAR_SLOW_CALL";

/// Environment variable for [`crate::ActorPoolBuilder::hold_threshold`], in seconds.
pub const ENV_HOLD: &str = "XOSCAR_SERIAL_HOLD";

/// The thresholds of one pool; `None` is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Thresholds {
    pub(crate) slow_call: Option<Duration>,
    pub(crate) hold: Option<Duration>,
}

impl Thresholds {
    /// The builder's values, else the environment's, else off.
    pub(crate) fn resolve(
        slow_call: Option<Duration>,
        hold: Option<Duration>,
    ) -> Result<Thresholds, ConfigError> {
        Ok(Thresholds {
            slow_call: slow_call.map_or_else(|| env_seconds(ENV_SLOW_CALL), |d| Ok(Some(d)))?,
            hold: hold.map_or_else(|| env_seconds(ENV_HOLD), |d| Ok(Some(d)))?,
        })
    }

    pub(crate) fn any(&self) -> bool {
        self.slow_call.is_some() || self.hold.is_some()
    }
}

/// Logs what crossed a threshold for one message of type `message`, handled by actor `uid` of
/// type `actor`: queued at `queued` (when known), started at `started`, done now. `serial`:
/// whether the handler held the actor (a concurrent actor's handlers hold nothing).
pub(crate) fn report(
    thresholds: Thresholds,
    actor: &'static str,
    uid: &str,
    message: &'static str,
    queued: Option<Instant>,
    started: Instant,
    serial: bool,
) {
    let now = Instant::now();
    let held = now - started;
    if serial && thresholds.hold.is_some_and(|hold| held >= hold) {
        tracing::warn!(
            actor,
            uid,
            message_type = message,
            held_ms = held.as_millis() as u64,
            "serial actor held by one message"
        );
    }
    let took = now - queued.unwrap_or(started);
    if thresholds.slow_call.is_some_and(|slow| took >= slow) {
        tracing::warn!(
            actor,
            uid,
            message_type = message,
            took_ms = took.as_millis() as u64,
            "slow call"
        );
    }
}
