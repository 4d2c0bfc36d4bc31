//! A server with a shared secret: callers with it are served; callers without it, or with
//! another, are refused before any request is read, the refusal is counted and logged as a
//! warning with the peer's address, and the caller's error says why.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{message, run};
use xoscar_pool::{Handler, Message, Pool, PoolConfig, PoolError, ServerConfig, serve};
use xoscar_testkit::logs::Captured;
use xoscar_transport::{Address, AuthToken, TransportConfig, TransportError, listen};

/// Echoes, counting the requests it saw.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicUsize>);

impl Handler for Counting {
    async fn call(&self, request: Message) -> Message {
        self.0.fetch_add(1, Ordering::SeqCst);
        request
    }
}

fn transport(secret: Option<&str>) -> TransportConfig {
    TransportConfig::default().auth_token(secret.map(|s| AuthToken::new(s).unwrap()))
}

fn caller(secret: Option<&str>) -> Pool {
    Pool::new(PoolConfig::default().transport(transport(secret))).unwrap()
}

#[test]
fn only_callers_that_prove_the_secret_are_served() {
    let logs = Captured::default();
    let _logging = tracing::subscriber::set_default(logs.clone());
    run(async {
        let pid = std::process::id();
        let socket = std::env::temp_dir().join(format!("xoscar-pool-auth-{pid}.sock"));
        for address in ["127.0.0.1:0".parse().unwrap(), Address::unix(socket)] {
            let listener =
                listen(&address, &transport(Some("s3cret-0123456789abcdef"))).await.unwrap();
            let seen = Counting::default();
            let server = serve(listener, seen.clone(), ServerConfig::default()).unwrap();
            let at = server.local_addr().clone();

            let answer =
                caller(Some("s3cret-0123456789abcdef")).call(&at, message("ping")).await.unwrap();
            assert_eq!(&answer.header[..], b"ping");

            for (secret, why) in [
                (None, "this end has none (set XOSCAR_AUTH_TOKEN"),
                (Some("guess-0123456789abcdef"), "another shared secret"),
            ] {
                let error = caller(secret).call(&at, message("sneak")).await.unwrap_err();
                match &error {
                    PoolError::Connect { source, .. } => assert!(
                        matches!(&**source, TransportError::AuthFailed { reason, .. } if reason.contains(why)),
                        "{at}: {error}"
                    ),
                    other => panic!("{at}: expected a refused dial, got {other}"),
                }
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while server.refused() < 2 {
                assert!(tokio::time::Instant::now() < deadline, "{at}: refusals not counted");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(
                seen.0.load(Ordering::SeqCst),
                1,
                "{at}: only the authenticated call was read"
            );
            let warnings = logs.lines_with("refused a peer that did not authenticate");
            assert_eq!(warnings.len(), 2, "{at}: {warnings:?}");
            let peer = match &at {
                Address::Tcp { .. } => "127.0.0.1:".to_owned(),
                _ => format!("peer of {at}"),
            };
            assert!(warnings.iter().all(|w| w.contains(&peer)), "{warnings:?}");
            logs.take();
            server.shutdown().await;
        }
    });
}
