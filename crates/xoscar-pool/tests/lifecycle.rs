//! The connection lifecycle under tokio's paused clock, in-process, with exact deadlines:
//! idle reaping, leases across long silences, dead-peer verdicts, server idle close, go-away.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Sleepy, inproc, message, pool_with, run_paused, settle, sleep_for, start};
use tokio::time::Instant;
use xoscar_pool::testing::Echo;
use xoscar_pool::{Pool, PoolConfig, PoolError, Server, ServerConfig};
use xoscar_transport::{Channel, TransportConfig, listen};
use xoscar_wire::{Envelope, Frame, pb};

const T: Duration = Duration::from_secs(1);
/// `max(T / 10, 50 ms)` for T = 1 s.
const REAP_SLACK: Duration = Duration::from_millis(100);

#[test]
fn an_idle_connection_is_reaped_within_t_plus_slack_and_the_next_call_redials() {
    run_paused(async {
        let server = start(&inproc(), Echo, ServerConfig::default()).await;
        let pool = pool_with(T);
        pool.call(server.local_addr(), message("a")).await.unwrap();
        let released = Instant::now();
        settle().await;
        assert_eq!(server.connections(), 1);

        tokio::time::sleep_until(released + T - Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(pool.stats().open_connections, 1, "not reaped before T");

        tokio::time::sleep_until(released + T + REAP_SLACK).await;
        settle().await;
        let stats = pool.stats();
        assert_eq!((stats.open_connections, stats.reaps), (0, 1), "reaped by T + max(T/10, 50 ms)");
        assert_eq!(server.connections(), 0, "the server saw the close");

        pool.call(server.local_addr(), message("b")).await.unwrap();
        assert_eq!(pool.stats().connects, 2);
    });
}

#[test]
fn a_call_lasting_3t_is_not_cut_by_the_reaper() {
    run_paused(async {
        let server = start(&inproc(), Sleepy::default(), ServerConfig::default()).await;
        let pool = pool_with(T);
        let started = Instant::now();
        pool.call(server.local_addr(), sleep_for(3 * T.as_millis() as u64)).await.unwrap();
        assert_eq!(started.elapsed(), 3 * T);
        assert_eq!((pool.stats().reaps, pool.stats().connects), (0, 1));
    });
}

#[test]
fn a_lease_held_across_3t_of_silence_keeps_its_connection() {
    run_paused(async {
        let server = start(&inproc(), Echo, ServerConfig::default()).await;
        let pool = pool_with(T);
        let lease = pool.lease(server.local_addr()).await.unwrap();
        tokio::time::sleep(3 * T).await;
        settle().await;
        assert_eq!((pool.stats().open_connections, pool.stats().reaps), (1, 0));
        lease.call(message("still here")).await.unwrap();
        drop(lease);
        let released = Instant::now();
        tokio::time::sleep_until(released + T + REAP_SLACK).await;
        settle().await;
        assert_eq!(pool.stats().reaps, 1, "reaped once the lease is gone");
    });
}

#[test]
fn a_silent_peer_is_declared_dead_at_interval_plus_timeout() {
    run_paused(async {
        // A peer that accepts and then never reads nor writes: a blackhole.
        let mut listener = listen(&inproc(), &TransportConfig::default()).await.unwrap();
        let endpoint = listener.local_addr().clone();
        let frozen = tokio::spawn(async move {
            let channel = listener.accept().await.unwrap().handshake().await.unwrap();
            std::future::pending::<Channel>().await;
            drop(channel);
        });
        let interval = Duration::from_secs(1);
        let timeout = Duration::from_secs(2);
        let pool = Pool::new(
            PoolConfig::default().heartbeat_interval(interval).heartbeat_timeout(timeout),
        )
        .unwrap();
        // Dial first, so the call's clock starts on an established connection.
        drop(pool.lease(&endpoint).await.unwrap());
        let started = Instant::now();
        let error = pool.call(&endpoint, message("anyone?")).await.unwrap_err();
        assert!(
            matches!(error, PoolError::ConnectionTimedOut { silent_for, .. } if silent_for == interval + timeout),
            "{error}"
        );
        assert_eq!(started.elapsed(), interval + timeout, "dead exactly at interval + timeout");
        let stats = pool.stats();
        assert_eq!((stats.dead_peers, stats.open_connections, stats.leases_in_flight), (1, 0, 0));
        frozen.abort();
    });
}

#[test]
fn a_long_call_is_not_mistaken_for_a_dead_peer() {
    run_paused(async {
        let server = start(&inproc(), Sleepy::default(), ServerConfig::default()).await;
        let pool = Pool::new(
            PoolConfig::default()
                .heartbeat_interval(Duration::from_secs(1))
                .heartbeat_timeout(Duration::from_secs(2)),
        )
        .unwrap();
        // Ten times interval + timeout: the server's connection task answers every ping.
        pool.call(server.local_addr(), sleep_for(30_000)).await.unwrap();
        assert_eq!(pool.stats().dead_peers, 0);
    });
}

/// The idle timeout of the servers below.
const SERVER_IDLE: Duration = Duration::from_secs(2);

/// An echo server closing connections idle for [`SERVER_IDLE`], a pool that never reaps its
/// own (idle timeout off), and one call made through them (the connection the tests watch).
async fn echo_server_and_first_call() -> (Server, Pool) {
    let server = start(&inproc(), Echo, ServerConfig::default().idle_timeout(SERVER_IDLE)).await;
    let pool = pool_with(Duration::ZERO);
    pool.call(server.local_addr(), message("a")).await.unwrap();
    (server, pool)
}

/// The server's one connection is still open a millisecond before `deadline` and closed at
/// it (paused clock).
async fn closes_exactly_at(server: &Server, deadline: Instant) {
    tokio::time::sleep_until(deadline - Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(server.connections(), 1, "not closed before the server idle timeout");
    tokio::time::sleep_until(deadline).await;
    settle().await;
    assert_eq!(server.connections(), 0, "closed at the server idle timeout");
}

#[test]
fn a_server_idle_close_sends_go_away_and_never_fails_a_call() {
    run_paused(async {
        let (server, pool) = echo_server_and_first_call().await;
        let last_frame = Instant::now();
        settle().await;

        closes_exactly_at(&server, last_frame + SERVER_IDLE).await;
        assert_eq!(pool.stats().open_connections, 0, "the caller let go of it too");

        pool.call(server.local_addr(), message("b")).await.unwrap();
        assert_eq!(pool.stats().connects, 2);
    });
}

/// The server's idle watch waits for the load to end: a request in flight past the idle
/// timeout keeps its connection serving (no go-away: a call made meanwhile takes it), and the
/// connection closes as soon as the last answer is out if nothing was read for longer than
/// the timeout by then.
#[test]
fn a_server_connection_busy_past_its_idle_timeout_closes_once_its_last_answer_is_out() {
    run_paused(async {
        let server_idle = Duration::from_secs(2);
        let config = ServerConfig::default().idle_timeout(server_idle);
        let server = start(&inproc(), Sleepy::default(), config).await;
        let pool = pool_with(Duration::ZERO);
        let started = Instant::now();
        let long_call = tokio::spawn({
            let (pool, address) = (pool.clone(), server.local_addr().clone());
            async move { pool.call(&address, sleep_for(5_000)).await }
        });
        tokio::time::sleep_until(started + Duration::from_millis(2_500)).await;
        pool.call(server.local_addr(), sleep_for(0)).await.unwrap();
        assert_eq!(pool.stats().connects, 1, "the busy connection still takes calls");

        tokio::time::sleep_until(started + Duration::from_millis(4_999)).await;
        settle().await;
        assert_eq!(server.connections(), 1, "not closed while a request is in flight");
        long_call.await.unwrap().unwrap();
        assert_eq!(Instant::now(), started + Duration::from_secs(5));
        settle().await;
        assert_eq!(server.connections(), 0, "closed as soon as the last answer was out");
    });
}

/// Every frame read moves the server's idle deadline to a full timeout after it, though the
/// watch's timer was set before the read.
#[test]
fn a_frame_read_moves_the_server_idle_deadline_a_full_timeout_on() {
    run_paused(async {
        let (server, pool) = echo_server_and_first_call().await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        pool.call(server.local_addr(), message("b")).await.unwrap();
        let last_frame = Instant::now();

        closes_exactly_at(&server, last_frame + SERVER_IDLE).await;
        assert_eq!(pool.stats().connects, 1);
    });
}

#[test]
fn a_request_the_server_never_saw_is_resent_after_go_away() {
    run_paused(async {
        let mut listener = listen(&inproc(), &TransportConfig::default()).await.unwrap();
        let endpoint = listener.local_addr().clone();
        let server = tokio::spawn(async move {
            // First connection: take the request, but claim to have accepted nothing.
            let mut first = listener.accept().await.unwrap().handshake().await.unwrap();
            let _unseen = first.recv().await.unwrap().unwrap();
            let go_away = pb::GoAway { last_accepted_id: 0, reason: "test".into() };
            first.send(Frame::new(Envelope::GoAway(go_away), vec![])).await.unwrap();
            drop(first);
            // Second connection: answer properly.
            let mut second = listener.accept().await.unwrap().handshake().await.unwrap();
            let frame = second.recv().await.unwrap().unwrap().into_frame();
            let Envelope::Request(request) = frame.envelope else { panic!("expected a request") };
            second.send(Frame::response(request.id, request.header, frame.payloads)).await.unwrap();
            second
        });
        let pool = pool_with(Duration::ZERO);
        let reply = pool
            .call(&endpoint, xoscar_pool::Message::new(Bytes::from_static(b"retry me"), vec![]))
            .await
            .unwrap();
        assert_eq!(&reply.header[..], b"retry me");
        assert_eq!(pool.stats().connects, 2);
        drop(server.await.unwrap());
    });
}

#[test]
fn reaping_can_be_turned_off() {
    run_paused(async {
        let server =
            start(&inproc(), Echo, ServerConfig::default().idle_timeout(Duration::ZERO)).await;
        let pool = pool_with(Duration::ZERO);
        pool.call(server.local_addr(), message("a")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        settle().await;
        assert_eq!((pool.stats().open_connections, pool.stats().reaps), (1, 0));
    });
}

#[test]
fn a_response_with_an_unknown_id_is_dropped_and_fails_no_call() {
    run_paused(async {
        let mut listener = listen(&inproc(), &TransportConfig::default()).await.unwrap();
        let endpoint = listener.local_addr().clone();
        let server = tokio::spawn(async move {
            let mut channel = listener.accept().await.unwrap().handshake().await.unwrap();
            while let Ok(Some(frame)) = channel.recv().await {
                let frame = frame.into_frame();
                let Envelope::Request(request) = frame.envelope else { continue };
                // A stray response for an id nobody asked for, then the real one.
                let stray =
                    Frame::response(request.id + 1000, Bytes::from_static(b"stray"), vec![]);
                channel.send(stray).await.unwrap();
                channel
                    .send(Frame::response(request.id, request.header, frame.payloads))
                    .await
                    .unwrap();
            }
        });
        let pool = pool_with(Duration::ZERO);
        for _ in 0..3 {
            let reply = pool.call(&endpoint, message("real")).await.unwrap();
            assert_eq!(&reply.header[..], b"real");
        }
        assert_eq!((pool.stats().connects, pool.stats().open_connections), (1, 1));
        server.abort();
    });
}

#[test]
fn cancels_racing_their_responses_are_harmless() {
    run_paused(async {
        let handler = Sleepy::default();
        let server = start(&inproc(), handler.clone(), ServerConfig::default()).await;
        let pool = pool_with(Duration::ZERO);
        // The handler takes 10 ms; the calls give up at 9, 10 or 11 ms: before, at the same
        // instant as, or after their responses.
        let calls: Vec<_> = (0..300u64)
            .map(|i| {
                let (pool, endpoint) = (pool.clone(), server.local_addr().clone());
                let timeout = Duration::from_millis(9 + i % 3);
                tokio::spawn(async move {
                    pool.call_with_timeout(&endpoint, sleep_for(10), Some(timeout)).await
                })
            })
            .collect();
        let (mut answered, mut timed_out) = (0, 0);
        for call in calls {
            match call.await.unwrap() {
                Ok(_) => answered += 1,
                Err(PoolError::CallTimedOut { .. }) => timed_out += 1,
                Err(other) => panic!("unexpected error {other}"),
            }
        }
        assert!(answered >= 100 && timed_out >= 100, "answered {answered}, timed out {timed_out}");
        settle().await;
        let stats = pool.stats();
        assert_eq!((stats.leases_in_flight, stats.open_connections, stats.dead_peers), (0, 1, 0));
        pool.call(server.local_addr(), sleep_for(0)).await.unwrap();
    });
}

#[test]
fn dropping_the_pool_closes_a_connection_only_once_its_last_lease_is_released() {
    run_paused(async {
        let server = start(&inproc(), Echo, ServerConfig::default()).await;
        let pool = pool_with(Duration::ZERO);
        let lease = pool.lease(server.local_addr()).await.unwrap();
        drop(pool);
        settle().await;
        assert_eq!(server.connections(), 1, "the leased connection stays");
        lease.call(message("still usable")).await.unwrap();
        drop(lease);
        settle().await;
        assert_eq!(server.connections(), 0, "closed with the last lease");
    });
}
