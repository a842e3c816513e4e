//! Protobuf well-known types from their std counterparts, and API values
//! made comparable.

use std::time::Duration;

use gostream::pb::gostream::v1::Consumer;
use pbjson_types::Duration as PbDuration;

/// `consumer` without its `oldest_unacked_age`, which grows from one read
/// to the next: two reads of an unchanged consumer are equal this way.
pub fn without_age(consumer: Consumer) -> Consumer {
    Consumer {
        oldest_unacked_age: None,
        ..consumer
    }
}

/// `d` as a `google.protobuf.Duration`.
pub fn pb_duration(d: Duration) -> PbDuration {
    PbDuration {
        seconds: i64::try_from(d.as_secs()).expect("a short duration"),
        nanos: i32::try_from(d.subsec_nanos()).expect("below one second"),
    }
}
