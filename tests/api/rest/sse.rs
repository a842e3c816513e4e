//! A Server-Sent Events reader over a live response body: comments and
//! events (type and data) as they arrive, each read bounded in time.

use std::{collections::VecDeque, pin::Pin, time::Duration};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use reqwest::StatusCode;
use serde_json::Value;

use super::support::{Rest, messages};
use crate::common::{within, within_limit};

impl Rest {
    /// Opens a Server-Sent Events stream at `path`, which must answer 200
    /// with `text/event-stream`.
    pub async fn sse(&self, path: &str) -> Sse {
        let response = within(
            "the event stream's headers",
            self.client().get(self.url(path)).send(),
        )
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "GET {path}: content-type {content_type:?}"
        );
        Sse::new(response)
    }
}

/// One item of a Server-Sent Events stream.
#[derive(Debug)]
pub(super) enum SseItem {
    /// A comment line (`:` and the text after it).
    Comment(String),
    /// An event: its `event` field, if any, and its data lines joined.
    Event { event: Option<String>, data: String },
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A Server-Sent Events body, parsed as it arrives.
pub(super) struct Sse {
    body: Body,
    buffer: Vec<u8>,
    ready: VecDeque<SseItem>,
    event: Option<String>,
    data: Vec<String>,
}

impl Sse {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
            ready: VecDeque::new(),
            event: None,
            data: Vec::new(),
        }
    }

    /// The next item, or `None` when the body has ended. A body that fails
    /// (the connection cut mid-stream) fails the test.
    pub async fn next_item(&mut self) -> Option<SseItem> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            match self.body.next().await {
                None => return None,
                Some(Err(e)) => panic!("the event stream broke off: {e}"),
                Some(Ok(chunk)) => {
                    self.buffer.extend_from_slice(&chunk);
                    self.parse_lines();
                }
            }
        }
    }

    fn parse_lines(&mut self) {
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8(raw).expect("an event stream is UTF-8");
            let line = line.trim_end_matches('\n').trim_end_matches('\r');
            if line.is_empty() {
                let event = self.event.take();
                if !self.data.is_empty() {
                    let data = std::mem::take(&mut self.data).join("\n");
                    self.ready.push_back(SseItem::Event { event, data });
                }
            } else if let Some(comment) = line.strip_prefix(':') {
                self.ready.push_back(SseItem::Comment(comment.to_owned()));
            } else {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
                match field {
                    "data" => self.data.push(value),
                    "event" => self.event = Some(value),
                    _ => {}
                }
            }
        }
    }

    /// The next event, skipping comments: (its `event` field, its data as
    /// JSON). Fails the test if the stream ends or nothing comes in time.
    pub async fn next_event(&mut self) -> (Option<String>, Value) {
        within("an event", async {
            loop {
                match self.next_item().await {
                    None => panic!("the event stream ended"),
                    Some(SseItem::Comment(_)) => {}
                    Some(SseItem::Event { event, data }) => {
                        let json = serde_json::from_str(&data)
                            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data}"));
                        return (event, json);
                    }
                }
            }
        })
        .await
    }

    /// Reads message events until `count` messages have arrived. Every event
    /// must be a default-type (`message`) event with a non-empty batch.
    pub async fn receive(&mut self, count: usize) -> Vec<Value> {
        let mut received = Vec::new();
        while received.len() < count {
            let (event, data) = self.next_event().await;
            assert_eq!(
                event.as_deref().unwrap_or("message"),
                "message",
                "a batch is a default-type event: {data}"
            );
            let batch = messages(&data);
            assert!(!batch.is_empty(), "an event without messages: {data}");
            received.extend(batch);
        }
        assert_eq!(received.len(), count, "more messages than published");
        received
    }

    /// The next item, which must come within `limit`.
    pub async fn next_within(&mut self, limit: Duration, what: &str) -> Option<SseItem> {
        within_limit(limit, what, self.next_item()).await
    }

    /// Reads to the end of the stream, which must come in time and carry no
    /// more events (comments are allowed).
    pub async fn expect_end(&mut self) {
        within("the end of the event stream", async {
            while let Some(item) = self.next_item().await {
                if let SseItem::Event { event, data } = item {
                    panic!("an event ({event:?}) where the stream should end: {data}");
                }
            }
        })
        .await;
    }
}
