//! Wake-ups of long-polls and subscriptions when another node (or this
//! one) changes a topic.
//!
//! Every script that appends to a topic, deletes it or deletes one of its
//! consumers `PUBLISH`es the topic's name on the store's change channel
//! (`<prefix>:changes`). Each node keeps one pub/sub connection subscribed
//! to it (in a cluster, classic pub/sub messages reach every node, so a
//! connection to any one seed node hears them all) and bumps a per-topic
//! `watch` channel that waiting reads hold a receiver of. A waiting read
//! takes its receiver *before* it reads, so a change between the read and
//! the wait still wakes it; changes made through this node wake its
//! waiters directly too, without the round trip. After the pub/sub
//! connection is (re)established every waiter is woken, since changes may
//! have been missed while it was down.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError, Weak},
    time::Duration,
};

use futures_util::StreamExt as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The per-topic change signals of one store.
#[derive(Default)]
pub(super) struct Waiters {
    topics: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Waiters {
    /// A receiver that sees every change to `topic` from now on.
    pub(super) fn watch(&self, topic: &str) -> watch::Receiver<u64> {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if topics.len() >= 1024 {
            topics.retain(|_, sender| sender.receiver_count() > 0);
        }
        topics
            .entry(topic.to_owned())
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }

    /// Wakes whoever waits on `topic`.
    pub(super) fn wake(&self, topic: &str) {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = topics.get(topic) {
            if sender.receiver_count() == 0 {
                topics.remove(topic);
            } else {
                sender.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// Wakes every waiter (changes may have been missed).
    pub(super) fn wake_all(&self) {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        for sender in topics.values() {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// Listens on `channel` of the servers at `urls` (one at a time, the next
/// one when a connection fails) and wakes `waiters`, until `stop` is
/// cancelled or the store is gone.
pub(super) async fn listen(
    urls: Vec<String>,
    channel: String,
    waiters: Weak<Waiters>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    let mut next = 0;
    loop {
        let url = &urls[next % urls.len()];
        next += 1;
        let mut established = false;
        let connection = async {
            let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
            let mut pubsub =
                tokio::time::timeout(super::link::CONNECT_TIMEOUT, client.get_async_pubsub())
                    .await
                    .map_err(|_| "connecting timed out".to_owned())?
                    .map_err(|e| e.to_string())?;
            tokio::time::timeout(super::link::RESPONSE_TIMEOUT, pubsub.subscribe(&channel))
                .await
                .map_err(|_| "subscribing timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            let (mut sink, mut stream) = pubsub.split();
            established = true;
            tracing::debug!(%url, %channel, "listening for topic changes");
            let Some(all) = waiters.upgrade() else {
                return Ok(());
            };
            all.wake_all();
            drop(all);
            let mut keepalive = tokio::time::interval(Duration::from_secs(5));
            keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    message = stream.next() => {
                        let Some(message) = message else {
                            return Err("the connection closed".to_owned());
                        };
                        let Some(all) = waiters.upgrade() else {
                            return Ok(());
                        };
                        match std::str::from_utf8(message.get_payload_bytes()) {
                            Ok(topic) => all.wake(topic),
                            Err(_) => all.wake_all(),
                        }
                    }
                    _ = keepalive.tick() => {
                        // A connection that silently died is noticed here.
                        match tokio::time::timeout(super::link::RESPONSE_TIMEOUT, sink.ping::<redis::Value>()).await {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => return Err(e.to_string()),
                            Err(_) => return Err("a ping timed out".to_owned()),
                        }
                    }
                }
            }
        };
        let result = tokio::select! {
            result = connection => result,
            () = stop.cancelled() => return,
        };
        match result {
            Ok(()) => return,
            Err(error) => {
                tracing::debug!(%url, %error, "topic change notifications interrupted; reconnecting");
                backoff = if established {
                    Duration::from_millis(50)
                } else {
                    (backoff * 2).min(Duration::from_secs(1))
                };
            }
        }
        // While disconnected, waiters wake on their own timers only; tell
        // them something may have changed once reconnected (above).
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
        if waiters.strong_count() == 0 {
            return;
        }
    }
}
