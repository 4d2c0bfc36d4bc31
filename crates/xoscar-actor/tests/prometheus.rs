//! The Prometheus endpoint (feature `prometheus`): a pool serves the process's metrics on an
//! address of its own; after calls through its socket the scrape shows handled messages by
//! actor type, message type and outcome, the handler-time histogram, failed calls by kind,
//! the pool layer's connections, leases, reaps and dead peers (sub pool restarts:
//! xoscar-subpool's tests/prometheus.rs). Its own binary: it installs the process's metrics
//! recorder.
#![cfg(feature = "prometheus")]

mod common;

use common::prometheus::{sample, scrape};
use common::run;
use std::time::Duration;
use tokio::io::AsyncReadExt;

use xoscar_actor::{Actor, ActorError, ActorPool, Context, Failure, Handler, RemoteMessages};
use xoscar_pool::{Message, Pool, PoolConfig, PoolError};
use xoscar_transport::{TransportConfig, listen};

struct Halver;

#[derive(Clone, PartialEq, prost::Message)]
struct Halve {
    #[prost(int64, tag = "1")]
    n: i64,
}

impl Actor for Halver {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Halve>("Halve");
    }
}

impl Handler<Halve> for Halver {
    type Reply = i64;
    async fn handle(&mut self, h: Halve, _: &mut Context<Self>) -> Result<i64, Failure> {
        if h.n % 2 != 0 {
            return Err(Failure::msg("odd"));
        }
        Ok(h.n / 2)
    }
}

#[test]
fn a_pool_serves_its_metrics_to_prometheus() {
    run(async {
        let pool = ActorPool::builder("127.0.0.1:0".parse().unwrap())
            .direct_delivery(false)
            .prometheus("127.0.0.1:0".parse().unwrap())
            .start()
            .await
            .unwrap();
        let endpoint = pool.prometheus_address().unwrap();
        assert_ne!(endpoint.port(), 0);
        let halver = pool.create(Halver).await.unwrap();
        for n in [2, 4, 6] {
            assert_eq!(halver.call(Halve { n }).await.unwrap(), n / 2);
        }
        let error = halver.call(Halve { n: 3 }).await.unwrap_err();
        assert!(matches!(error, ActorError::Handler { .. }), "{error}");
        // Every kind of call counts its failure: here a cancellable one, cancelled before sending.
        let cancelled = xoscar_actor::CancellationToken::new();
        cancelled.cancel();
        let error = halver.call_cancellable(Halve { n: 2 }, &cancelled).await.unwrap_err();
        assert!(matches!(error, ActorError::Cancelled { .. }), "{error}");

        // A reap and a dead peer, on a pool of short timeouts: one idle connection to the
        // pool, one to a server that completes the handshake and then says nothing.
        let quick = Pool::new(
            PoolConfig::default()
                .idle_timeout(Duration::from_millis(100))
                .heartbeat_interval(Duration::from_millis(100))
                .heartbeat_timeout(Duration::from_millis(100)),
        )
        .unwrap();
        let _ = quick.call(&pool.addresses()[0], Message::new(&b"?"[..], vec![])).await;
        let mut silent =
            listen(&"127.0.0.1:0".parse().unwrap(), &TransportConfig::default()).await.unwrap();
        let silent_at = silent.local_addr().clone();
        let hold = tokio::spawn(async move {
            let channel = silent.accept().await.unwrap().handshake().await.unwrap();
            std::future::pending::<()>().await;
            drop(channel);
        });
        let error = quick.call(&silent_at, Message::new(&b"?"[..], vec![])).await.unwrap_err();
        assert!(matches!(error, PoolError::ConnectionTimedOut { .. }), "{error}");
        hold.abort();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while quick.stats().reaps == 0 {
            assert!(tokio::time::Instant::now() < deadline, "not reaped: {:?}", quick.stats());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let text = scrape(endpoint, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        let labels = r#"actor="prometheus::Halver",message="prometheus::Halve""#;
        let ok = format!(r#"xoscar_actor_messages_total{{{labels},outcome="ok"}}"#);
        let failed = format!(r#"xoscar_actor_messages_total{{{labels},outcome="failed"}}"#);
        assert_eq!(sample(&text, &ok), Some(3.0), "{text}");
        assert_eq!(sample(&text, &failed), Some(1.0), "{text}");
        let count = format!("xoscar_actor_message_seconds_count{{{labels}}}");
        assert_eq!(sample(&text, &count), Some(4.0), "{text}");
        assert!(text.contains("xoscar_actor_message_seconds_bucket{"), "a histogram: {text}");
        assert_eq!(sample(&text, r#"xoscar_call_errors_total{kind="handler"}"#), Some(1.0));
        assert_eq!(sample(&text, r#"xoscar_call_errors_total{kind="cancelled"}"#), Some(1.0));
        // This process's own connection to its pool (and the quick pool's, if not gone yet).
        let open = sample(&text, "xoscar_client_connections").unwrap_or_default();
        assert!((1.0..=3.0).contains(&open), "{text}");
        assert!(sample(&text, "xoscar_server_connections").is_some_and(|n| n >= 1.0), "{text}");
        assert_eq!(sample(&text, "xoscar_client_leases"), Some(0.0), "{text}");
        assert!(sample(&text, "xoscar_client_connects_total").is_some_and(|n| n >= 3.0), "{text}");
        assert!(sample(&text, "xoscar_client_reaps_total").is_some_and(|n| n >= 1.0), "{text}");
        assert_eq!(sample(&text, "xoscar_client_dead_peers_total"), Some(1.0), "{text}");

        let refused = scrape(endpoint, "POST / HTTP/1.1\r\n\r\n").await;
        assert!(refused.starts_with("HTTP/1.1 405"), "{refused}");
        drop(pool);
        // The endpoint goes with its pool.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while tokio::net::TcpStream::connect(endpoint).await.is_ok() {
            assert!(tokio::time::Instant::now() < deadline, "the endpoint outlived its pool");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
}

#[test]
fn the_endpoint_bounds_what_a_scraper_can_hold() {
    use std::time::Instant;
    run(async {
        let pool = ActorPool::builder("127.0.0.1:0".parse().unwrap())
            .prometheus("127.0.0.1:0".parse().unwrap())
            .start()
            .await
            .unwrap();
        let endpoint = pool.prometheus_address().unwrap();
        // A head that never ends: answered once 8 KiB have arrived, not held open.
        let endless = format!("GET /{} HTTP/1.1\r\n", "a".repeat(10 * 1024));
        assert!(scrape(endpoint, &endless).await.starts_with("HTTP/1.1 200 OK"));
        // 16 scrapers that say nothing take every slot; one more is closed at once.
        let mut silent = Vec::new();
        for _ in 0..16 {
            silent.push(tokio::net::TcpStream::connect(endpoint).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut extra = tokio::net::TcpStream::connect(endpoint).await.unwrap();
        let mut nothing = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut nothing));
        assert!(matches!(read.await, Ok(Ok(0))), "the 17th scraper was not closed at once");
        // The silent ones are dropped after 5 s, and the slots free up.
        let started = Instant::now();
        for mut stream in silent {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest));
            assert!(read.await.is_ok(), "a silent scraper was held past its bound");
        }
        let waited = started.elapsed();
        assert!(waited <= Duration::from_secs(8), "{waited:?}");
        let text = scrape(endpoint, "GET / HTTP/1.1\r\n\r\n").await;
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    });
}
