//! `gostream broker`: BrokerService.GetBroker.

use super::{
    Failure,
    connect::Clients,
    output::{Printer, age, limit},
};
use gostream_api::gostream::v1::GetBrokerRequest;

/// Prints the broker: `name: value` lines, or the Broker as JSON.
pub async fn run(mut clients: Clients, out: &mut Printer) -> Result<(), Failure> {
    let response = clients.broker.get_broker(GetBrokerRequest {}).await?;
    let broker = response.into_inner().broker.unwrap_or_default();
    if out.json() {
        return out.json_line(&broker);
    }
    let retention = broker.default_retention.unwrap_or_default();
    out.fields(&[
        ("storage", broker.storage.clone()),
        ("topics", broker.topic_count.to_string()),
        ("messages", broker.message_count.to_string()),
        ("bytes", broker.size_bytes.to_string()),
        ("memory bytes", broker.memory_bytes.to_string()),
        ("max memory bytes", broker.max_memory_bytes.to_string()),
        ("response bytes", broker.response_memory_bytes.to_string()),
        (
            "subscription bytes",
            broker.subscription_memory_bytes.to_string(),
        ),
        (
            "max response bytes",
            broker.max_response_memory_bytes.to_string(),
        ),
        ("default max messages", limit(retention.max_messages)),
        ("default max bytes", limit(retention.max_bytes)),
        ("default max age", age(retention.max_age)),
    ])
}
