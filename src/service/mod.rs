//! The gRPC services: `gostream.v1` and the GoStream-compatible `gostream`
//! package, both adapters over one [`Store`](crate::store::Store);
//! [`stream`]: the task that serves one PublishStream; and [`wire`]: bad
//! wire input answered as the client's error.

pub mod admission;
pub mod consumer_update;
pub mod convert;
pub mod legacy;
pub mod retention;
pub mod stream;
pub mod v1;
pub mod wire;

pub use legacy::Legacy;
pub use v1::V1;

use crate::error::{Error, StoreError};
use gostream_store::Subject;

/// A store failure as the `gostream.v1` API reports it: an `Invalid` value
/// becomes `InvalidArgument` naming the request field that carried it; every
/// other failure keeps its variant.
impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Invalid {
                subject,
                description,
            } => Error::invalid(field(subject), description),
            other => Error::Store(other),
        }
    }
}

/// The `gostream.v1` request field that carries `subject` when the request
/// does not say otherwise (see [`at_field`]).
pub fn field(subject: Subject) -> String {
    match subject {
        Subject::TopicName => "topic".to_owned(),
        Subject::ConsumerId => "consumer".to_owned(),
        Subject::Records => "records".to_owned(),
        Subject::Record(index) => format!("records[{index}]"),
        Subject::AckTimeout => "ack_timeout".to_owned(),
        Subject::MaxMessages => "max_messages".to_owned(),
        Subject::MaxDeliveries => "max_deliveries".to_owned(),
        Subject::Backoff => "backoff".to_owned(),
        Subject::DeadLetterTopic => "dead_letter_topic".to_owned(),
        Subject::MaxOutstanding => "max_outstanding".to_owned(),
        Subject::Offsets => "offsets".to_owned(),
        Subject::Delay => "delay".to_owned(),
        Subject::Extension => "extension".to_owned(),
        Subject::Reason => "reason".to_owned(),
        Subject::ProducerId => "producer_id".to_owned(),
        Subject::RecordId(index) => format!("records[{index}].id"),
        Subject::DedupeWindow => "dedupe_window".to_owned(),
    }
}

/// Maps a store failure whose `Invalid` value came from request field
/// `field` (a name in a path, a legacy request's one `message` field).
pub fn at_field(field: &str) -> impl Fn(StoreError) -> Error + '_ {
    move |error| match error {
        StoreError::Invalid { description, .. } => Error::invalid(field, description),
        other => Error::Store(other),
    }
}
