//! Protobuf well-known types from their std counterparts.

use std::time::Duration;

use pbjson_types::Duration as PbDuration;

/// `d` as a `google.protobuf.Duration`.
pub fn pb_duration(d: Duration) -> PbDuration {
    PbDuration {
        seconds: i64::try_from(d.as_secs()).expect("a short duration"),
        nanos: i32::try_from(d.subsec_nanos()).expect("below one second"),
    }
}
