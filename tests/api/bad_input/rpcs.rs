//! Every RPC of both APIs that takes a topic name or a consumer id, with the
//! fields that carry them and how it treats them.

use gostream::pb::gostream::{self as legacy, v1 as pb};

use super::{
    cases::{Call, rpc},
    fixture::{
        Clients, EARLIEST, at, commit, duration, fetch, legacy_fetch, legacy_publish, new_consumer,
        record, seek, subscribe,
    },
};

/// How an RPC treats the name in a field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Takes {
    /// Looks it up: an unknown one is NOT_FOUND.
    Existing,
    /// Creates it (an unknown one is fine, an empty one is generated).
    New,
    /// Looks it up if set; empty means none.
    Optional,
}

/// An RPC that takes a topic name and maybe a consumer id.
pub(super) struct Rpc {
    pub(super) name: &'static str,
    pub(super) topic: (&'static str, Takes),
    pub(super) consumer: Option<(&'static str, Takes)>,
    /// The call with this topic and consumer (ignored if it takes none).
    pub(super) call: fn(&Clients, &str, &str) -> Call,
}

fn row(name: &'static str, topic: &'static str, call: fn(&Clients, &str, &str) -> Call) -> Rpc {
    Rpc {
        name,
        topic: (topic, Takes::Existing),
        consumer: None,
        call,
    }
}

impl Rpc {
    fn creates_topic(self) -> Self {
        Self {
            topic: (self.topic.0, Takes::New),
            ..self
        }
    }

    fn consumer(self, field: &'static str, takes: Takes) -> Self {
        Self {
            consumer: Some((field, takes)),
            ..self
        }
    }
}

/// Every `gostream.v1` RPC that takes a name (all but ListTopics).
pub(super) fn v1_rpcs() -> Vec<Rpc> {
    use Takes::{Existing, New, Optional};
    vec![
        row("v1 CreateTopic", "name", |c, t, _| {
            rpc!(
                c.topics,
                create_topic,
                pb::CreateTopicRequest {
                    name: t.into(),
                    retention: None,
                    ..Default::default()
                }
            )
        })
        .creates_topic(),
        row("v1 GetTopic", "name", |c, t, _| {
            rpc!(c.topics, get_topic, pb::GetTopicRequest { name: t.into() })
        }),
        row("v1 DeleteTopic", "name", |c, t, _| {
            rpc!(
                c.topics,
                delete_topic,
                pb::DeleteTopicRequest { name: t.into() }
            )
        }),
        row("v1 Publish", "topic", |c, t, _| {
            let request = pb::PublishRequest {
                topic: t.into(),
                records: vec![record(b"v")],
                ..Default::default()
            };
            rpc!(c.publisher, publish, request)
        }),
        row("v1 CreateConsumer", "topic", |c, t, k| {
            rpc!(c.consumers, create_consumer, new_consumer(t, k))
        })
        .consumer("consumer_id", New),
        row("v1 GetConsumer", "topic", |c, t, k| {
            let request = pb::GetConsumerRequest {
                topic: t.into(),
                consumer: k.into(),
            };
            rpc!(c.consumers, get_consumer, request)
        })
        .consumer("consumer", Existing),
        row("v1 ListConsumers", "topic", |c, t, _| {
            let request = pb::ListConsumersRequest {
                topic: t.into(),
                ..Default::default()
            };
            rpc!(c.consumers, list_consumers, request)
        }),
        row("v1 DeleteConsumer", "topic", |c, t, k| {
            let request = pb::DeleteConsumerRequest {
                topic: t.into(),
                consumer: k.into(),
            };
            rpc!(c.consumers, delete_consumer, request)
        })
        .consumer("consumer", Existing),
        row("v1 Fetch", "topic", |c, t, k| {
            rpc!(c.consumers, fetch, fetch(t, k))
        })
        .consumer("consumer", Existing),
        // A long-poll with a bad or unknown name fails before it waits.
        row("v1 Fetch (long-poll)", "topic", |c, t, k| {
            let request = pb::FetchRequest {
                max_wait: duration(60, 0),
                ..fetch(t, k)
            };
            rpc!(c.consumers, fetch, request)
        })
        .consumer("consumer", Existing),
        row("v1 Commit", "topic", |c, t, k| {
            rpc!(c.consumers, commit, commit(t, k, 0))
        })
        .consumer("consumer", Existing),
        row("v1 Seek", "topic", |c, t, k| {
            rpc!(c.consumers, seek, seek(t, k, at(EARLIEST)))
        })
        .consumer("consumer", Existing),
        row("v1 UpdateConsumer", "consumer.topic", |c, t, k| {
            let request = pb::UpdateConsumerRequest {
                consumer: Some(pb::Consumer {
                    topic: t.into(),
                    id: k.into(),
                    max_outstanding: 10,
                    ..Default::default()
                }),
                update_mask: None,
            };
            rpc!(c.consumers, update_consumer, request)
        })
        .consumer("consumer.id", Existing),
        row("v1 Ack", "topic", |c, t, k| {
            let request = pb::AckRequest {
                topic: t.into(),
                consumer: k.into(),
                offsets: vec![0],
                ..Default::default()
            };
            rpc!(c.consumers, ack, request)
        })
        .consumer("consumer", Existing),
        row("v1 Nack", "topic", |c, t, k| {
            let request = pb::NackRequest {
                topic: t.into(),
                consumer: k.into(),
                offsets: vec![0],
                ..Default::default()
            };
            rpc!(c.consumers, nack, request)
        })
        .consumer("consumer", Existing),
        row("v1 Reject", "topic", |c, t, k| {
            let request = pb::RejectRequest {
                topic: t.into(),
                consumer: k.into(),
                offsets: vec![0],
                ..Default::default()
            };
            rpc!(c.consumers, reject, request)
        })
        .consumer("consumer", Existing),
        row("v1 ExtendLease", "topic", |c, t, k| {
            let request = pb::ExtendLeaseRequest {
                topic: t.into(),
                consumer: k.into(),
                offsets: vec![0],
                ..Default::default()
            };
            rpc!(c.consumers, extend_lease, request)
        })
        .consumer("consumer", Existing),
        row("v1 Subscribe (ephemeral)", "topic", |c, t, _| {
            rpc!(c.consumers, subscribe, subscribe(t, "", None))
        }),
        // An empty consumer is an ephemeral subscription, not an error.
        row("v1 Subscribe", "topic", |c, t, k| {
            rpc!(c.consumers, subscribe, subscribe(t, k, None))
        })
        .consumer("consumer", Optional),
    ]
}

/// Every legacy `gostream` RPC that takes a name (all but GetTopics and
/// GetConsumers, which take nothing).
pub(super) fn legacy_rpcs() -> Vec<Rpc> {
    use Takes::{Existing, New};
    vec![
        row("legacy CreateTopic", "topicname", |c, t, _| {
            rpc!(
                c.producer,
                create_topic,
                legacy::CreateTopicRequest {
                    topicname: t.into()
                }
            )
        })
        .creates_topic(),
        row("legacy DeleteTopic", "topicname", |c, t, _| {
            rpc!(
                c.producer,
                delete_topic,
                legacy::DeleteTopicRequest {
                    topicname: t.into()
                }
            )
        }),
        row("legacy Publish", "topicname", |c, t, _| {
            rpc!(c.producer, publish, legacy_publish(t, "hello".into()))
        }),
        row("legacy CreateConsumer", "topicname", |c, t, k| {
            let request = legacy::CreateConsumerRequest {
                consumerid: k.into(),
                topicname: t.into(),
            };
            rpc!(c.reader, create_consumer, request)
        })
        .consumer("consumerid", New),
        row("legacy GetOffset", "topicname", |c, t, k| {
            let request = legacy::GetOffsetRequest {
                consumerid: k.into(),
                topicname: t.into(),
            };
            rpc!(c.reader, get_offset, request)
        })
        .consumer("consumerid", Existing),
        row("legacy Fetch", "topicname", |c, t, k| {
            rpc!(c.reader, fetch, legacy_fetch(t, k))
        })
        .consumer("consumerid", Existing),
    ]
}
