//! Per-message consumers (work queues): leases, Ack, Nack, Reject and
//! ExtendLease, the dead-letter topic, UpdateConsumer's mask, the errors of
//! each call, and Subscribe held at `max_outstanding`.

use std::time::Duration;

use gostream::{
    pb::gostream::v1::{CommitMode, Consumer, CreateConsumerRequest, SubscribeRequest},
    store::{
        DEAD_LETTER_CONSUMER, DEAD_LETTER_DELIVERY_COUNT, DEAD_LETTER_DETAIL, DEAD_LETTER_REASON,
        DEAD_LETTER_SOURCE_OFFSET, DEAD_LETTER_SOURCE_TOPIC,
    },
};
use pbjson_types::FieldMask;
use tonic::Code;

use super::{
    super::over_every_transport, consumer_at, fetch_at_most, fetch_of, manual_consumer, offsets,
    payloads, values,
};
use crate::{
    common::{pb_duration, within_limit},
    transports::client::{
        Broker, Leases, Settle, Settled, expect_error, expect_invalid, next_batch, receive,
    },
};

over_every_transport!(
    per_message_consumers_lease_settle_and_dead_letter,
    settle_calls_and_commit_refuse_what_does_not_apply,
    update_consumer_changes_what_its_mask_names,
    update_consumer_refuses_bad_masks_and_values,
    subscribe_through_a_per_message_consumer_stops_at_max_outstanding,
);

/// A per-message consumer `id` of `topic` from the earliest message.
fn queue(topic: &str, id: &str) -> CreateConsumerRequest {
    CreateConsumerRequest {
        commit_mode: CommitMode::PerMessage as i32,
        ..consumer_at(topic, id, None)
    }
}

fn secs(seconds: u64) -> Option<pbjson_types::Duration> {
    Some(pb_duration(Duration::from_secs(seconds)))
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// `(applied, not_leased)` as a settle call answers it.
fn settled(applied: &[u64], not_leased: &[u64]) -> Settled {
    (applied.to_vec(), not_leased.to_vec())
}

/// Every delivered message is leased with its delivery count; each settle
/// call applies to what is leased and reports the rest; a nacked message
/// comes back with the next count, a rejected one lands in the dead-letter
/// topic with its headers, and the consumer counts both.
async fn per_message_consumers_lease_settle_and_dead_letter(b: &impl Broker) {
    let (topic, dead) = ("queue.jobs", "queue.jobs.dead");
    b.create_topic(topic).await.expect("CreateTopic");
    b.create_topic(dead).await.expect("CreateTopic");
    let created = b
        .create_consumer(CreateConsumerRequest {
            ack_timeout: secs(60),
            max_deliveries: 3,
            backoff: vec![pb_duration(Duration::from_secs(5))],
            dead_letter_topic: dead.into(),
            max_outstanding: 100,
            ..queue(topic, "workers")
        })
        .await
        .expect("CreateConsumer");
    assert_eq!(created.commit_mode, CommitMode::PerMessage as i32);
    assert_eq!(
        (
            created.max_deliveries,
            created.backoff.clone(),
            created.dead_letter_topic.as_str(),
            created.max_outstanding
        ),
        (3, vec![pb_duration(Duration::from_secs(5))], dead, 100)
    );
    b.publish(topic, values("job", 4)).await.expect("Publish");

    let first = b
        .fetch(fetch_at_most(topic, "workers", 4))
        .await
        .expect("Fetch");
    assert_eq!(offsets(&first.messages), [0, 1, 2, 3]);
    assert!(first.messages.iter().all(|m| m.delivery_count == 1));
    let consumer = b.get_consumer(topic, "workers").await.expect("GetConsumer");
    assert_eq!((consumer.outstanding, consumer.waiting), (4, 0));

    let ack = |leases| b.settle(Settle::Ack, topic, "workers", leases);
    assert_eq!(ack(Leases::offsets(&[0])).await, Ok(settled(&[0], &[])));
    assert_eq!(
        ack(Leases::offsets(&[0, 9])).await,
        Ok(settled(&[], &[0, 9])),
        "an acked or never delivered message is not leased"
    );

    let extend = b
        .settle(
            Settle::ExtendLease(secs(120)),
            topic,
            "workers",
            Leases::deliveries(&[(1, 1), (2, 2)]),
        )
        .await;
    assert_eq!(
        extend,
        Ok(settled(&[1], &[2])),
        "offset 2 was never delivered a second time"
    );

    let nack = b
        .settle(
            Settle::Nack(secs(0)),
            topic,
            "workers",
            Leases::offsets(&[1]),
        )
        .await;
    assert_eq!(nack, Ok(settled(&[1], &[])));
    let reject = b
        .settle(
            Settle::Reject("cannot parse".into()),
            topic,
            "workers",
            Leases::offsets(&[2]),
        )
        .await;
    assert_eq!(reject, Ok(settled(&[2], &[])));

    let again = b.fetch(fetch_of(topic, "workers")).await.expect("Fetch");
    assert_eq!(offsets(&again.messages), [1], "only the nacked message");
    assert_eq!(again.messages[0].delivery_count, 2);
    assert_eq!(payloads(&again.messages), [b"job-1".as_slice()]);
    let stale = ack(Leases::deliveries(&[(1, 1)])).await;
    assert_eq!(
        stale,
        Ok(settled(&[], &[1])),
        "the first delivery's lease is gone"
    );
    let both = ack(Leases {
        offsets: vec![3, 3],
        ..Leases::deliveries(&[(1, 2)])
    })
    .await;
    assert_eq!(both, Ok(settled(&[1, 3], &[])), "a duplicate counts once");

    let consumer = b.get_consumer(topic, "workers").await.expect("GetConsumer");
    assert_eq!(
        (
            consumer.committed_offset,
            consumer.outstanding,
            consumer.waiting,
            consumer.redelivered,
            consumer.dead_lettered,
            consumer.lag
        ),
        (4, 0, 0, 1, 1, 0)
    );

    b.create_consumer(consumer_at(dead, "inspect", None))
        .await
        .expect("CreateConsumer");
    let letters = b.fetch(fetch_of(dead, "inspect")).await.expect("Fetch");
    assert_eq!(payloads(&letters.messages), [b"job-2".as_slice()]);
    let headers = &letters.messages[0].headers;
    for (name, value) in [
        (DEAD_LETTER_SOURCE_TOPIC, topic),
        (DEAD_LETTER_SOURCE_OFFSET, "2"),
        (DEAD_LETTER_CONSUMER, "workers"),
        (DEAD_LETTER_DELIVERY_COUNT, "1"),
        (DEAD_LETTER_REASON, "reject"),
        (DEAD_LETTER_DETAIL, "cannot parse"),
    ] {
        assert_eq!(
            headers.get(name).map(String::as_str),
            Some(value),
            "{name}: {headers:?}"
        );
    }
}

/// Settle calls need a per-message consumer and 1 to 10000 messages, each
/// error naming its request field; Commit is refused on a per-message
/// consumer. A refused call changes nothing.
async fn settle_calls_and_commit_refuse_what_does_not_apply(b: &impl Broker) {
    let topic = "queue.errors";
    b.create_topic(topic).await.expect("CreateTopic");
    b.publish(topic, values("m", 3)).await.expect("Publish");
    b.create_consumer(queue(topic, "q"))
        .await
        .expect("CreateConsumer");
    b.create_consumer(manual_consumer(topic, "manual", Duration::from_secs(60)))
        .await
        .expect("CreateConsumer");
    b.create_consumer(consumer_at(topic, "auto", None))
        .await
        .expect("CreateConsumer");
    b.fetch(fetch_at_most(topic, "q", 3)).await.expect("Fetch");
    b.fetch(fetch_at_most(topic, "manual", 1))
        .await
        .expect("Fetch");

    for id in ["manual", "auto"] {
        let refused = b
            .settle(Settle::Ack, topic, id, Leases::offsets(&[0]))
            .await;
        let error = expect_error(refused, Code::FailedPrecondition, "NOT_PER_MESSAGE");
        assert!(error.message.contains(id), "{error:?}");
    }
    let commit = b.commit(topic, "q", 1).await;
    let error = expect_error(commit, Code::FailedPrecondition, "PER_MESSAGE_CONSUMER");
    assert!(error.message.contains("Ack"), "{error:?}");
    let missing = b
        .settle(Settle::Ack, topic, "nobody", Leases::offsets(&[0]))
        .await;
    expect_error(missing, Code::NotFound, "CONSUMER_NOT_FOUND");

    let q = |settle, leases| b.settle(settle, topic, "q", leases);
    expect_invalid(q(Settle::Ack, Leases::default()).await, "offsets");
    let too_many: Vec<u64> = (0..10_001).collect();
    expect_invalid(q(Settle::Ack, Leases::offsets(&too_many)).await, "offsets");
    expect_invalid(
        q(Settle::Ack, Leases::deliveries(&[(0, 1), (1, 0)])).await,
        "deliveries[1].delivery_count",
    );
    expect_invalid(
        q(Settle::Nack(secs(7200)), Leases::offsets(&[0])).await,
        "delay",
    );
    expect_invalid(
        q(Settle::ExtendLease(secs(0)), Leases::offsets(&[0])).await,
        "extension",
    );
    expect_invalid(
        q(Settle::Reject("x".repeat(1025)), Leases::offsets(&[0])).await,
        "reason",
    );

    let consumer = b.get_consumer(topic, "q").await.expect("GetConsumer");
    assert_eq!(
        (
            consumer.outstanding,
            consumer.waiting,
            consumer.committed_offset
        ),
        (3, 0, 0),
        "a refused call changed the consumer"
    );
    // What the refused calls named is still leased, and settles.
    let acked = q(Settle::Ack, Leases::offsets(&[0, 1, 2])).await;
    assert_eq!(acked, Ok(settled(&[0, 1, 2], &[])));
}

/// The consumer as UpdateConsumer names it: only `topic` and `id` set.
fn named(topic: &str, id: &str) -> Consumer {
    Consumer {
        topic: topic.into(),
        id: id.into(),
        ..Consumer::default()
    }
}

/// Each path of the mask takes the request's value or, when it is not set
/// there, the default; no mask changes what the request sets; `*` is every
/// setting; output-only paths are ignored.
async fn update_consumer_changes_what_its_mask_names(b: &impl Broker) {
    let (topic, dead) = ("queue.update", "queue.update.dead");
    b.create_topic(topic).await.expect("CreateTopic");
    b.create_topic(dead).await.expect("CreateTopic");
    b.create_consumer(CreateConsumerRequest {
        ack_timeout: secs(45),
        max_deliveries: 4,
        max_outstanding: 50,
        ..queue(topic, "q")
    })
    .await
    .expect("CreateConsumer");
    let settings = |c: &Consumer| {
        (
            c.ack_timeout,
            c.max_deliveries,
            c.backoff.clone(),
            c.dead_letter_topic.clone(),
            c.max_outstanding,
        )
    };

    let updated = b
        .update_consumer(
            Consumer {
                max_deliveries: 7,
                backoff: vec![
                    pb_duration(Duration::from_secs(1)),
                    pb_duration(Duration::from_secs(2)),
                ],
                max_outstanding: 999,
                ..named(topic, "q")
            },
            mask(&["max_deliveries", "backoff", "offset", "lag", "outstanding"]),
        )
        .await
        .expect("UpdateConsumer");
    assert_eq!(
        settings(&updated),
        (
            secs(45),
            7,
            vec![
                pb_duration(Duration::from_secs(1)),
                pb_duration(Duration::from_secs(2))
            ],
            String::new(),
            50
        ),
        "only the named settings change"
    );
    assert_eq!(updated.commit_mode, CommitMode::PerMessage as i32);

    let updated = b
        .update_consumer(
            Consumer {
                dead_letter_topic: dead.into(),
                max_outstanding: 20,
                ..named(topic, "q")
            },
            None,
        )
        .await
        .expect("UpdateConsumer");
    assert_eq!(
        settings(&updated),
        (
            secs(45),
            7,
            vec![
                pb_duration(Duration::from_secs(1)),
                pb_duration(Duration::from_secs(2))
            ],
            dead.to_owned(),
            20
        ),
        "no mask: what the request sets"
    );

    let updated = b
        .update_consumer(named(topic, "q"), mask(&["ack_timeout", "backoff"]))
        .await
        .expect("UpdateConsumer");
    assert_eq!(
        settings(&updated),
        (secs(30), 7, Vec::new(), dead.to_owned(), 20),
        "named and unset: back to the default"
    );

    let updated = b
        .update_consumer(
            Consumer {
                max_deliveries: 2,
                commit_mode: CommitMode::PerMessage as i32,
                ..named(topic, "q")
            },
            mask(&["*", "commit_mode"]),
        )
        .await
        .expect("UpdateConsumer");
    assert_eq!(
        settings(&updated),
        (secs(30), 2, Vec::new(), String::new(), 1000),
        "* names every setting"
    );
    let got = b.get_consumer(topic, "q").await.expect("GetConsumer");
    assert_eq!(settings(&got), settings(&updated), "the update is kept");

    // A manual consumer's ack timeout changes too.
    b.create_consumer(manual_consumer(topic, "manual", Duration::from_secs(60)))
        .await
        .expect("CreateConsumer");
    let manual = b
        .update_consumer(
            Consumer {
                ack_timeout: secs(5),
                ..named(topic, "manual")
            },
            mask(&["ack_timeout"]),
        )
        .await
        .expect("UpdateConsumer");
    assert_eq!(manual.ack_timeout, secs(5));
    // `*` names what the consumer's mode has: a manual consumer's ack
    // timeout (back to its default here), nothing of an auto consumer.
    let manual = b
        .update_consumer(named(topic, "manual"), mask(&["*"]))
        .await
        .expect("UpdateConsumer");
    assert_eq!(manual.ack_timeout, secs(30));
    b.create_consumer(consumer_at(topic, "auto", None))
        .await
        .expect("CreateConsumer");
    let auto = b
        .update_consumer(named(topic, "auto"), mask(&["*"]))
        .await
        .expect("UpdateConsumer");
    assert_eq!(auto.commit_mode, CommitMode::Auto as i32);
    let refused = b
        .update_consumer(named(topic, "auto"), mask(&["ack_timeout"]))
        .await;
    expect_invalid(refused, "consumer.ack_timeout");
}

/// Unknown paths, a change of commit mode, and settings out of range are
/// `INVALID_ARGUMENT` naming the field, and change nothing.
async fn update_consumer_refuses_bad_masks_and_values(b: &impl Broker) {
    let topic = "queue.update.bad";
    b.create_topic(topic).await.expect("CreateTopic");
    let before = b
        .create_consumer(queue(topic, "q"))
        .await
        .expect("CreateConsumer");
    b.create_consumer(manual_consumer(topic, "manual", Duration::from_secs(60)))
        .await
        .expect("CreateConsumer");

    let update = |consumer, paths: &[&str]| b.update_consumer(consumer, mask(paths));
    expect_invalid(update(named(topic, "q"), &["colour"]).await, "update_mask");
    let mode = update(
        Consumer {
            commit_mode: CommitMode::Manual as i32,
            ..named(topic, "q")
        },
        &["commit_mode"],
    )
    .await;
    let error = expect_invalid(mode, "consumer.commit_mode");
    assert!(error.message.contains("cannot change"), "{error:?}");
    let missing_dlq = update(
        Consumer {
            dead_letter_topic: "queue.nowhere".into(),
            ..named(topic, "q")
        },
        &["dead_letter_topic"],
    )
    .await;
    let error = expect_invalid(missing_dlq, "consumer.dead_letter_topic");
    assert!(error.message.contains("does not exist"), "{error:?}");
    let own = update(
        Consumer {
            dead_letter_topic: topic.into(),
            ..named(topic, "q")
        },
        &["dead_letter_topic"],
    )
    .await;
    expect_invalid(own, "consumer.dead_letter_topic");
    let over = update(
        Consumer {
            max_outstanding: 10_001,
            ..named(topic, "q")
        },
        &["max_outstanding"],
    )
    .await;
    expect_invalid(over, "consumer.max_outstanding");
    let backoff = update(
        Consumer {
            backoff: vec![pb_duration(Duration::from_secs(7200))],
            ..named(topic, "q")
        },
        &["backoff"],
    )
    .await;
    expect_invalid(backoff, "consumer.backoff");
    let not_queue = update(
        Consumer {
            max_deliveries: 3,
            ..named(topic, "manual")
        },
        &["max_deliveries"],
    )
    .await;
    expect_invalid(not_queue, "consumer.max_deliveries");
    let nobody = update(named(topic, "nobody"), &["max_deliveries"]).await;
    expect_error(nobody, Code::NotFound, "CONSUMER_NOT_FOUND");

    let after = b.get_consumer(topic, "q").await.expect("GetConsumer");
    assert_eq!(
        (
            after.max_deliveries,
            after.backoff,
            after.dead_letter_topic,
            after.max_outstanding,
            after.commit_mode
        ),
        (
            before.max_deliveries,
            before.backoff,
            before.dead_letter_topic,
            before.max_outstanding,
            before.commit_mode
        ),
        "a refused update changed the consumer"
    );
}

/// Subscribe through a per-message consumer leases what it pushes: it
/// stops at `max_outstanding` (a Fetch gets nothing either) until Acks
/// free room, and then pushes the rest.
async fn subscribe_through_a_per_message_consumer_stops_at_max_outstanding(b: &impl Broker) {
    let topic = "queue.subscribe";
    b.create_topic(topic).await.expect("CreateTopic");
    b.create_consumer(CreateConsumerRequest {
        max_outstanding: 3,
        ..queue(topic, "q")
    })
    .await
    .expect("CreateConsumer");
    b.publish(topic, values("m", 5)).await.expect("Publish");

    let mut subscription = b
        .subscribe(SubscribeRequest {
            topic: topic.into(),
            consumer: "q".into(),
            ..Default::default()
        })
        .await
        .expect("Subscribe");
    let pushed = receive(&mut subscription, 3).await;
    assert_eq!(offsets(&pushed), [0, 1, 2]);
    assert!(pushed.iter().all(|m| m.delivery_count == 1));

    let other = b.another().await;
    let fetched = other.fetch(fetch_of(topic, "q")).await.expect("Fetch");
    assert!(fetched.messages.is_empty(), "{fetched:?}");
    let consumer = other.get_consumer(topic, "q").await.expect("GetConsumer");
    assert_eq!((consumer.offset, consumer.outstanding), (3, 3));
    // Nothing more is pushed while the consumer is full (bounded look).
    let more =
        tokio::time::timeout(Duration::from_millis(300), next_batch(&mut subscription)).await;
    assert!(more.is_err(), "pushed past max_outstanding: {more:?}");

    let acked = other
        .settle(Settle::Ack, topic, "q", Leases::offsets(&[0, 1]))
        .await;
    assert_eq!(acked, Ok(settled(&[0, 1], &[])));
    let rest = within_limit(
        Duration::from_secs(10),
        "the rest, after the acks",
        receive(&mut subscription, 2),
    )
    .await;
    assert_eq!(offsets(&rest), [3, 4]);
}
