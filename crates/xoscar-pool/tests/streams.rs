//! Response streams (`Pool::call_stream`, `Responder::send_item`) on every transport: items in
//! order then the answer; a slow consumer holds the producer back to the credit window; a
//! dropped stream stops its producer; a stream holds its connection's lease through idle
//! spells longer than the idle timeout; a handler that does not stream answers once; streams at
//! the in-flight limit keep flowing (one more is refused); a graceful shutdown lets open
//! streams finish.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{addresses, eventually, message, run, start};
use tokio::sync::Notify;
use xoscar_pool::testing::Echo;
use xoscar_pool::{
    Handler, Message, Pool, PoolConfig, PoolError, Responder, ServerConfig, StreamError,
};

/// Streams the number of items in the header (`<count>` or `<count>:wait`, which waits for
/// `resume` before the last item), each its index as 8 bytes, then answers "done". Counts the
/// items sent; notes a cancel. A request that opened no stream is answered with what
/// `send_item` said.
#[derive(Clone, Default)]
struct Producer {
    produced: Arc<AtomicU64>,
    stopped: Arc<AtomicBool>,
    resume: Arc<Notify>,
}

fn item(index: u64) -> Message {
    Message::new(Bytes::new(), vec![Bytes::copy_from_slice(&index.to_le_bytes())])
}

fn index_of(message: &Message) -> u64 {
    u64::from_le_bytes(message.payloads[0][..].try_into().unwrap())
}

impl Handler for Producer {
    const RESPONDS: bool = true;

    async fn call(&self, request: Message) -> Message {
        Responder::respond_detached(self, request).await
    }

    fn respond(&self, request: Message, mut responder: Responder) {
        let text = String::from_utf8_lossy(&request.header).into_owned();
        let (count, wait) = match text.split_once(':') {
            Some((count, _)) => (count.parse::<u64>().unwrap_or(0), true),
            None => (text.parse::<u64>().unwrap_or(0), false),
        };
        let this = self.clone();
        tokio::spawn(async move {
            if !responder.is_stream() {
                let said = responder.send_item(item(0)).await;
                assert_eq!(said, Err(StreamError::NotAStream));
                return responder.respond(message("not a stream"));
            }
            for index in 0..count {
                if wait && index + 1 == count {
                    this.resume.notified().await;
                }
                if responder.send_item(item(index)).await.is_err() {
                    this.stopped.store(true, Ordering::SeqCst);
                    return;
                }
                this.produced.fetch_add(1, Ordering::SeqCst);
            }
            responder.respond(message("done"));
        });
    }
}

#[test]
fn items_arrive_in_order_then_the_answer_then_the_end() {
    run(async {
        for address in addresses() {
            let server = start(&address, Producer::default(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr();
            let mut stream = pool.call_stream(at, message("1000"), 16).await.unwrap();
            for expected in 0..1000 {
                assert_eq!(index_of(&stream.next().await.unwrap().unwrap()), expected);
            }
            assert_eq!(stream.next().await.unwrap().unwrap(), message("done"), "{address}");
            assert!(stream.next().await.is_none());
            drop(stream);
            assert_eq!(pool.stats().leases_in_flight, 0);
            // A plain call to the same handler is answered once; it opened no stream.
            assert_eq!(pool.call(at, message("3")).await.unwrap(), message("not a stream"));
            assert_eq!(pool.stats().connects, 1);
            server.shutdown().await;
        }
    });
}

#[test]
fn a_slow_consumer_holds_the_producer_to_the_credit_window() {
    const ITEMS: u64 = 100_000;
    const WINDOW: u32 = 32;
    run(async {
        for address in addresses() {
            let producer = Producer::default();
            let server = start(&address, producer.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let request = message_text(ITEMS.to_string());
            let mut stream = pool.call_stream(server.local_addr(), request, WINDOW).await.unwrap();
            let mut ahead_most = 0;
            for read in 0..ITEMS {
                let index = index_of(&stream.next().await.unwrap().unwrap());
                assert_eq!(index, read);
                if read % 10_000 == 0 {
                    // A slow spell: the producer runs ahead by the window at most.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let ahead = producer.produced.load(Ordering::SeqCst) - (read + 1);
                ahead_most = ahead_most.max(ahead);
                assert!(ahead <= u64::from(WINDOW), "{address}: the producer ran {ahead} ahead");
            }
            assert_eq!(stream.next().await.unwrap().unwrap(), message("done"));
            // It did run ahead (the window is used), and never past it.
            assert!(ahead_most >= u64::from(WINDOW) / 2, "{address}: at most {ahead_most} ahead");
            server.shutdown().await;
        }
    });
}

#[test]
fn dropping_a_stream_stops_its_producer() {
    run(async {
        for address in addresses() {
            let producer = Producer::default();
            let server = start(&address, producer.clone(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr();
            let mut stream = pool.call_stream(at, message("1000000"), 8).await.unwrap();
            for expected in 0..10 {
                assert_eq!(index_of(&stream.next().await.unwrap().unwrap()), expected);
            }
            drop(stream);
            let stopped = || producer.stopped.load(Ordering::SeqCst);
            assert!(eventually(Duration::from_secs(10), stopped).await, "{address}");
            assert!(producer.produced.load(Ordering::SeqCst) <= 10 + 8);
            assert_eq!(pool.stats().leases_in_flight, 0);
            // The connection goes on.
            assert_eq!(pool.call(at, message("1")).await.unwrap(), message("not a stream"));
            assert_eq!(pool.stats().connects, 1);
            server.shutdown().await;
        }
    });
}

#[test]
fn a_stream_keeps_its_connection_through_idle_spells_longer_than_the_idle_timeout() {
    run(async {
        for address in addresses() {
            let producer = Producer::default();
            let server = start(&address, producer.clone(), ServerConfig::default()).await;
            let config = PoolConfig::default().idle_timeout(Duration::from_millis(50));
            let pool = Pool::new(config).unwrap();
            let mut stream =
                pool.call_stream(server.local_addr(), message("3:wait"), 4).await.unwrap();
            for expected in 0..2 {
                assert_eq!(index_of(&stream.next().await.unwrap().unwrap()), expected);
            }
            // Six idle timeouts with nothing sent either way: the stream's lease keeps it.
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!((pool.stats().reaps, pool.stats().leases_in_flight), (0, 1), "{address}");
            producer.resume.notify_one();
            assert_eq!(index_of(&stream.next().await.unwrap().unwrap()), 2);
            assert_eq!(stream.next().await.unwrap().unwrap(), message("done"));
            drop(stream);
            // Idle now, so it is reaped.
            assert!(eventually(Duration::from_secs(10), || pool.stats().reaps == 1).await);
            server.shutdown().await;
        }
    });
}

#[test]
fn a_handler_that_does_not_stream_answers_a_stream_once() {
    run(async {
        for address in addresses() {
            let server = start(&address, Echo, ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let mut stream =
                pool.call_stream(server.local_addr(), message("just this"), 4).await.unwrap();
            assert_eq!(stream.next().await.unwrap().unwrap(), message("just this"));
            assert!(stream.next().await.is_none(), "{address}");
            server.shutdown().await;
        }
    });
}

fn message_text(text: String) -> Message {
    Message::new(Bytes::from(text), vec![])
}

#[test]
fn streams_at_the_in_flight_limit_keep_flowing_and_one_more_is_refused() {
    run(async {
        for address in addresses() {
            let producer = Producer::default();
            let config = ServerConfig::default().max_in_flight(2);
            let server = start(&address, producer.clone(), config).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let at = server.local_addr();
            // Two streams fill the limit; their credit frames must still be read.
            let mut first = pool.call_stream(at, message("1000"), 4).await.unwrap();
            let mut second = pool.call_stream(at, message("1000"), 4).await.unwrap();
            let refused = pool.call_stream(at, message("5"), 4).await.unwrap_err();
            assert!(matches!(refused, PoolError::Refused { .. }), "{address}: {refused:?}");
            assert!(refused.is_retry_safe());
            for expected in 0..1000 {
                assert_eq!(index_of(&first.next().await.unwrap().unwrap()), expected);
                assert_eq!(index_of(&second.next().await.unwrap().unwrap()), expected);
            }
            for stream in [&mut first, &mut second] {
                assert_eq!(stream.next().await.unwrap().unwrap(), message("done"));
                assert!(stream.is_finished());
            }
            // Ended streams hold no lease, even before they are dropped; a new one opens.
            assert_eq!(pool.stats().leases_in_flight, 0);
            let mut third = pool.call_stream(at, message("1"), 4).await.unwrap();
            assert_eq!(index_of(&third.next().await.unwrap().unwrap()), 0);
            assert_eq!(third.next().await.unwrap().unwrap(), message("done"));
            server.shutdown().await;
        }
    });
}

#[test]
fn a_graceful_shutdown_lets_open_streams_finish() {
    run(async {
        for address in addresses() {
            let server = start(&address, Producer::default(), ServerConfig::default()).await;
            let pool = Pool::new(PoolConfig::default()).unwrap();
            let mut stream =
                pool.call_stream(server.local_addr(), message("2000"), 8).await.unwrap();
            for expected in 0..10 {
                assert_eq!(index_of(&stream.next().await.unwrap().unwrap()), expected);
            }
            // The go-away comes while the stream needs many more credit frames.
            let shutdown = tokio::spawn(server.shutdown());
            for expected in 10..2000 {
                let item = stream.next().await.unwrap();
                assert_eq!(index_of(&item.unwrap_or_else(|e| panic!("{address}: {e}"))), expected);
            }
            assert_eq!(stream.next().await.unwrap().unwrap(), message("done"));
            tokio::time::timeout(Duration::from_secs(10), shutdown)
                .await
                .expect("the server closes once the stream has ended")
                .unwrap();
        }
    });
}

#[test]
fn a_huge_window_is_held_to_the_largest_credit_a_stream_gets() {
    run(async {
        let address = common::inproc();
        let producer = Producer::default();
        let server = start(&address, producer.clone(), ServerConfig::default()).await;
        let pool = Pool::new(PoolConfig::default()).unwrap();
        let mut stream =
            pool.call_stream(server.local_addr(), message("100000"), u32::MAX).await.unwrap();
        assert_eq!(index_of(&stream.next().await.unwrap().unwrap()), 0);
        let ran_ahead = || producer.produced.load(Ordering::SeqCst) >= 1000;
        assert!(eventually(Duration::from_secs(10), ran_ahead).await, "the window is used");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let produced = producer.produced.load(Ordering::SeqCst);
        assert!(produced <= u64::from(xoscar_pool::MAX_STREAM_WINDOW), "{produced} items ahead");
        drop(stream);
        server.shutdown().await;
    });
}
