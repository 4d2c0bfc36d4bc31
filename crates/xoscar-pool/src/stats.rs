//! Counters a user can read from a pool.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A snapshot of a pool's counters ([`crate::Pool::stats`]), over all runtimes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Connections open now.
    pub open_connections: usize,
    /// Leases held now: calls in flight, one-way sends not yet written, transfer leases.
    pub leases_in_flight: usize,
    /// Connections established since the pool was made.
    pub connects: u64,
    /// Connections closed by the idle reaper.
    pub reaps: u64,
    /// Connections declared dead because a ping went unanswered.
    pub dead_peers: u64,
    /// Tokio runtimes with caller state in the pool now (each has its own connections and
    /// reaper; a runtime's state leaves when the runtime shuts down).
    pub runtimes: usize,
}

/// The live counters behind [`PoolStats`]; each change is also reported through the
/// `metrics` facade. Gauges are set to process-wide totals (every pool of the process), not
/// moved by ±1, so a recorder installed late still reads the truth from the next change.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) open_connections: AtomicUsize,
    pub(crate) leases_in_flight: AtomicUsize,
    pub(crate) connects: AtomicU64,
    pub(crate) reaps: AtomicU64,
    pub(crate) dead_peers: AtomicU64,
}

/// Names of the caller pool's metrics (see docs/runtime.md, "Metrics").
pub(crate) mod names {
    /// Gauge: connections open now.
    pub const CONNECTIONS: &str = "xoscar_client_connections";
    /// Gauge: leases held now (calls in flight, unsent one-way messages, transfers).
    pub const LEASES: &str = "xoscar_client_leases";
    /// Counter: connections established.
    pub const CONNECTS: &str = "xoscar_client_connects_total";
    /// Counter: connections closed by the idle reaper.
    pub const REAPS: &str = "xoscar_client_reaps_total";
    /// Counter: connections declared dead (a ping went unanswered).
    pub const DEAD_PEERS: &str = "xoscar_client_dead_peers_total";
}

/// Moves a process-wide gauge by one. Increments and decrements, never `set` from a total
/// read a moment before: two threads setting totals they read in the other order would
/// leave the gauge wrong for good.
pub(crate) fn publish(name: &'static str, up: bool) {
    let gauge = metrics::gauge!(name);
    if up { gauge.increment(1.0) } else { gauge.decrement(1.0) }
}

impl Counters {
    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Relaxed);
        self.open_connections.fetch_add(1, Relaxed);
        metrics::counter!(names::CONNECTS).increment(1);
        publish(names::CONNECTIONS, true);
    }

    pub(crate) fn closed(&self, dead: bool) {
        self.open_connections.fetch_sub(1, Relaxed);
        publish(names::CONNECTIONS, false);
        if dead {
            self.dead_peers.fetch_add(1, Relaxed);
            metrics::counter!(names::DEAD_PEERS).increment(1);
        }
    }

    pub(crate) fn reaped(&self) {
        self.reaps.fetch_add(1, Relaxed);
        metrics::counter!(names::REAPS).increment(1);
    }

    pub(crate) fn leased(&self) {
        self.leases_in_flight.fetch_add(1, Relaxed);
        publish(names::LEASES, true);
    }

    pub(crate) fn released(&self) {
        self.leases_in_flight.fetch_sub(1, Relaxed);
        publish(names::LEASES, false);
    }

    pub(crate) fn snapshot(&self) -> PoolStats {
        PoolStats {
            open_connections: self.open_connections.load(Relaxed),
            leases_in_flight: self.leases_in_flight.load(Relaxed),
            connects: self.connects.load(Relaxed),
            reaps: self.reaps.load(Relaxed),
            dead_peers: self.dead_peers.load(Relaxed),
            runtimes: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

    use metrics::{Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, SharedString, Unit};

    use super::{Counters, names};
    use crate::server::{SERVER_CONNECTIONS, ServerCounters};

    /// A gauge that adds atomically, as real recorders do.
    #[derive(Default)]
    struct Value(AtomicU64);

    impl GaugeFn for Value {
        fn increment(&self, by: f64) {
            let _ =
                self.0.fetch_update(SeqCst, SeqCst, |v| Some((f64::from_bits(v) + by).to_bits()));
        }
        fn decrement(&self, by: f64) {
            self.increment(-by);
        }
        fn set(&self, value: f64) {
            self.0.store(value.to_bits(), SeqCst);
        }
    }

    #[derive(Default)]
    struct Gauges(parking_lot::Mutex<HashMap<String, Arc<Value>>>);

    impl Gauges {
        fn value(&self, name: &str) -> f64 {
            self.0.lock().get(name).map_or(0.0, |v| f64::from_bits(v.0.load(SeqCst)))
        }
    }

    impl metrics::Recorder for &'static Gauges {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            Counter::noop()
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.0.lock().entry(key.name().to_owned()).or_default().clone())
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// Connections and leases opened and closed on four threads at once, round after round,
    /// the closes released together: after each round every gauge reads exactly zero.
    /// (Setting each gauge to a total read a moment before left it at whatever the last
    /// racing thread had read.)
    #[test]
    fn gauges_stay_exact_under_concurrent_changes() {
        let gauges: &'static Gauges = Box::leak(Box::default());
        metrics::set_global_recorder(gauges).unwrap();
        let (client, server) = (Arc::new(Counters::default()), Arc::new(ServerCounters::default()));
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let wrong = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let (client, server) = (client.clone(), server.clone());
                let (barrier, wrong) = (barrier.clone(), wrong.clone());
                std::thread::spawn(move || {
                    for round in 0..2_000 {
                        client.connected();
                        client.leased();
                        server.opened();
                        barrier.wait();
                        client.released();
                        server.closed();
                        client.closed(false);
                        barrier.wait();
                        if thread == 0 {
                            for name in [names::CONNECTIONS, names::LEASES, SERVER_CONNECTIONS] {
                                if gauges.value(name) != 0.0 {
                                    wrong.lock().push((round, name, gauges.value(name)));
                                }
                            }
                        }
                        barrier.wait();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*wrong.lock(), Vec::new());
    }
}
