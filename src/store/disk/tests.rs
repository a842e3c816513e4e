//! Tests of the durable log as a whole.
