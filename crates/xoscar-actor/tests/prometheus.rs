//! The Prometheus endpoint (feature `prometheus`): a pool serves the process's metrics on an
//! address of its own; after calls through its socket the scrape shows handled messages by
//! actor type, message type and outcome, the handler-time histogram, failed calls by kind,
//! and the pool layer's connections and leases. Its own binary: it installs the process's
//! metrics recorder.
#![cfg(feature = "prometheus")]

mod common;

use common::run;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xoscar_actor::{Actor, ActorError, ActorPool, Context, Failure, Handler, RemoteMessages};

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

async fn scrape(address: std::net::SocketAddr, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

/// The value of the sample whose line starts with `series` (name and labels, as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
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
        assert_eq!(sample(&text, "xoscar_client_connections"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "xoscar_server_connections"), Some(1.0), "{text}");
        assert_eq!(sample(&text, "xoscar_client_leases"), Some(0.0), "{text}");
        assert!(sample(&text, "xoscar_client_connects_total").is_some_and(|n| n >= 1.0));

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
