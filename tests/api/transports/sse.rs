//! Server-Sent Events, as the REST gateway streams Subscribe: each
//! `SubscribeResponse` one event of the default type with its JSON as data,
//! an error as an `error` event with the error JSON, comment lines (starting
//! with `:`) as keep-alives.

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _, stream::BoxStream};
use gostream::pb::gostream::v1::SubscribeResponse;
use serde_json::Value;

use super::{client::Outcome, rest::error_of};

/// The events of an event-stream body, parsed as Subscribe items. The stream
/// ends when the body does.
pub fn events(
    mut body: BoxStream<'static, reqwest::Result<Bytes>>,
) -> impl Stream<Item = Outcome<SubscribeResponse>> + Send + 'static {
    async_stream::stream! {
        let mut buffer: Vec<u8> = Vec::new();
        let mut event = Event::default();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.unwrap_or_else(|e| panic!("reading the event stream: {e}"));
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let line = String::from_utf8(line).expect("an event stream is UTF-8");
                let line = line.trim_end_matches('\n').trim_end_matches('\r');
                if let Some(item) = event.take_line(line) {
                    yield item;
                }
            }
        }
    }
}

/// The event being read.
#[derive(Default)]
struct Event {
    kind: String,
    data: Vec<String>,
}

impl Event {
    /// Takes one line; a blank line dispatches the event read so far.
    fn take_line(&mut self, line: &str) -> Option<Outcome<SubscribeResponse>> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None; // a comment: keep-alive
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => self.data.push(value.to_owned()),
            "event" => value.clone_into(&mut self.kind),
            "id" | "retry" => {}
            other => panic!("unexpected event-stream field {other:?} in {line:?}"),
        }
        None
    }

    fn dispatch(&mut self) -> Option<Outcome<SubscribeResponse>> {
        let kind = std::mem::take(&mut self.kind);
        let data = std::mem::take(&mut self.data);
        if data.is_empty() {
            return None;
        }
        let data = data.join("\n");
        let json: Value = serde_json::from_str(&data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data}"));
        match kind.as_str() {
            "" | "message" => Some(Ok(serde_json::from_value(json).unwrap_or_else(|e| {
                panic!("event data is not a SubscribeResponse ({e}): {data}")
            }))),
            "error" => Some(Err(error_of(None, &json))),
            other => panic!("unexpected event type {other:?}: {data}"),
        }
    }
}
