//! The change notices a node listens to: its pub/sub connection stays up
//! (so a publish through another node wakes waiters at once, not at the
//! next reconnect, and waiters are not woken for nothing).

use std::time::{Duration, Instant};

use crate::{node::Node, redis_support::RedisServer};

/// The ids of the server's pub/sub clients.
fn subscribers(server: &RedisServer) -> Vec<String> {
    server
        .cli(&["CLIENT", "LIST", "TYPE", "pubsub"])
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
#[ignore = "needs redis-server; tests/run.sh runs it"]
async fn the_notice_connection_stays_up() {
    let server = RedisServer::start();
    let node = Node::start(&server.url(), "gostream").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let now = subscribers(&server);
        if now.len() == 1 {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the node never subscribed: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Its first keepalive ping goes out at once; a reply it cannot read
    // would drop the connection within a few milliseconds, again and again.
    // Watch it for a while: the same connection throughout.
    let watch = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < watch {
        assert_eq!(subscribers(&server), first, "the node reconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.stop().await;
}
