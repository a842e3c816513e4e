//! Running cases: a call as a boxed future, the failure it must produce, and
//! [`Failures`], which runs a table of them and collects every mismatch.

use std::{fmt::Debug, future::Future, pin::Pin, time::Duration};

use gostream::error::ERROR_DOMAIN;
use tonic::{Code, Response, Status};
use tonic_types::StatusExt as _;

/// A call under test: the response (as text, for the report) or the status.
pub(super) type Call = Pin<Box<dyn Future<Output = Result<String, Status>> + Send>>;

/// Boxes a tonic call into a [`Call`].
pub(super) fn call<T: Debug>(
    future: impl Future<Output = Result<Response<T>, Status>> + Send + 'static,
) -> Call {
    Box::pin(async move { future.await.map(|r| format!("{:?}", r.into_inner())) })
}

/// `rpc!(client, method, request)`: a [`Call`] of `method` on a clone of
/// `client` (a cheap handle on the client's connection).
macro_rules! rpc {
    ($client:expr, $method:ident, $request:expr) => {{
        let mut client = $client.clone();
        let request = $request;
        $crate::bad_input::cases::call(async move { client.$method(request).await })
    }};
}
pub(super) use rpc;

/// The failure a case must produce.
#[derive(Debug, Clone)]
pub(super) struct Expect {
    code: Code,
    /// `ErrorInfo.reason`.
    reason: &'static str,
    /// The field a `BadRequest` violation must name.
    field: Option<String>,
    /// What the status message must contain.
    says: Vec<String>,
}

impl Expect {
    pub(super) fn new(code: Code, reason: &'static str, says: &[&str]) -> Self {
        Self {
            code,
            reason,
            field: None,
            says: says.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// What is wrong with `status`, if anything.
    pub(super) fn mismatch(&self, status: &Status) -> Option<String> {
        let mut wrong = Vec::new();
        if status.code() != self.code {
            wrong.push(format!(
                "code {:?}, expected {:?}",
                status.code(),
                self.code
            ));
        }
        for part in &self.says {
            if !status.message().contains(part.as_str()) {
                wrong.push(format!("message lacks {part:?}"));
            }
        }
        let details = status.get_error_details();
        match details.error_info() {
            None => wrong.push(format!("no ErrorInfo (expected reason {})", self.reason)),
            Some(info) if info.reason != self.reason || info.domain != ERROR_DOMAIN => {
                wrong.push(format!(
                    "ErrorInfo {}/{}, expected {}/{ERROR_DOMAIN}",
                    info.reason, info.domain, self.reason
                ))
            }
            Some(_) => {}
        }
        if let Some(field) = &self.field {
            let fields: Vec<&str> = details.bad_request().map_or_else(Vec::new, |b| {
                b.field_violations
                    .iter()
                    .map(|v| v.field.as_str())
                    .collect()
            });
            if !fields.contains(&field.as_str()) {
                wrong.push(format!("BadRequest fields {fields:?}, expected {field:?}"));
            }
        }
        (!wrong.is_empty()).then(|| {
            format!(
                "{}; got {:?} {:?}",
                wrong.join("; "),
                status.code(),
                status.message()
            )
        })
    }
}

/// INVALID_ARGUMENT naming `field` (as the message's `field: ` prefix and as
/// the field violation), with a message containing `says`.
pub(super) fn invalid(field: impl Into<String>, says: &[&str]) -> Expect {
    let field = field.into();
    let mut expect = Expect::new(Code::InvalidArgument, "INVALID_ARGUMENT", says);
    expect.says.insert(0, format!("{field}: "));
    expect.field = Some(field);
    expect
}

pub(super) fn topic_not_found(topic: &str) -> Expect {
    let quoted = format!("topic {topic:?}");
    Expect::new(
        Code::NotFound,
        "TOPIC_NOT_FOUND",
        &[&quoted, "does not exist"],
    )
}

pub(super) fn consumer_not_found(topic: &str, consumer: &str) -> Expect {
    let (c, t) = (format!("consumer {consumer:?}"), format!("topic {topic:?}"));
    Expect::new(
        Code::NotFound,
        "CONSUMER_NOT_FOUND",
        &[&c, "does not exist", &t],
    )
}

/// OUT_OF_RANGE for `offset`, naming the valid range `start` to `end`.
pub(super) fn out_of_range(offset: u64, start: u64, end: u64) -> Expect {
    let what = format!("offset {offset} is out of range");
    let range = format!("offsets {start} to {end}");
    Expect::new(Code::OutOfRange, "OFFSET_OUT_OF_RANGE", &[&what, &range])
}

/// One row of a table.
pub(super) struct Case {
    what: String,
    call: Call,
    expect: Expect,
}

pub(super) fn case(what: impl Into<String>, call: Call, expect: Expect) -> Case {
    Case {
        what: what.into(),
        call,
        expect,
    }
}

/// The longest a bad-input call may take: each fails at once (even a
/// long-poll must fail before it waits).
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Every case that did not fail as expected, by description.
#[derive(Default)]
pub(super) struct Failures {
    checked: usize,
    failed: Vec<String>,
}

impl Failures {
    /// Runs `cases` one by one and records each mismatch.
    pub(super) async fn check(&mut self, cases: Vec<Case>) {
        for Case { what, call, expect } in cases {
            self.checked += 1;
            match tokio::time::timeout(CALL_TIMEOUT, call).await {
                Err(_) => self
                    .failed
                    .push(format!("{what}: no answer in {CALL_TIMEOUT:?}")),
                Ok(Ok(response)) => self.failed.push(format!(
                    "{what}: succeeded ({response}), expected {:?}",
                    expect.code
                )),
                Ok(Err(status)) => {
                    if let Some(why) = expect.mismatch(&status) {
                        self.failed.push(format!("{what}: {why}"));
                    }
                }
            }
        }
    }

    /// Panics listing every failure.
    pub(super) fn assert_none(self) {
        assert!(
            self.failed.is_empty(),
            "{} of {} cases failed:\n  {}",
            self.failed.len(),
            self.checked,
            self.failed.join("\n  ")
        );
    }
}
