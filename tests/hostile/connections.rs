//! Attack 1: connections held open to lock other clients out.
//!
//! - A flood of idle connections from 127.0.0.2, more than
//!   `--max-connections` (200 here, 300 opened per listener): the broker
//!   closes the longest-idle ones to admit new clients, so a gRPC call and
//!   a REST call from 127.0.0.1 are served within 2 s.
//! - `--idle-timeout-ms 300`: a keep-alive connection with no request in
//!   flight is closed within 1.5 s (HTTP/1.1 on both listeners, HTTP/2 on
//!   the gRPC one) — but a long-polling Fetch (`maxWait` 2 s) and a
//!   Subscribe held 1.5 s (gRPC and SSE) are served to their end.
//! - Slowloris, `--header-timeout-ms 300`: headers at one byte every 50 ms
//!   are cut within 1.5 s and never answered 200.
//! - A partial body, `--body-timeout-ms 300`: a REST request with
//!   `Content-Length: 1000` and 10 bytes sent gets 408 with code 4
//!   (DEADLINE_EXCEEDED) naming the flag, or is closed, within 1.5 s; a
//!   partial grpc-web body gets `grpc-status: 4` or is closed.
//! - `--max-connections-per-address 20`: 20 connections from 127.0.0.3,
//!   each busy with a long-polling Fetch, leave the 21st from 127.0.0.3
//!   refused (503 / UNAVAILABLE naming the flag) while 127.0.0.1 is served.

use std::time::Duration;

use gostream::pb::gostream::v1::{
    FetchRequest, GetBrokerRequest, SubscribeRequest, broker_service_client::BrokerServiceClient,
};
use pbjson_types::Duration as PbDuration;
use tokio::{io::AsyncWriteExt as _, net::TcpStream, time::Instant};

use crate::harness::{
    HttpReply, LEGIT, PATIENCE, SERVED_WITHIN, Setup, attacker, connect_from, consumers,
    create_consumer, create_topic, frame, grpc_web_status, publish, read_until_closed, within,
};

/// How long after a 300 ms timeout the broker may take to act on it.
const CUT_WITHIN: Duration = Duration::from_millis(1500);

/// The client preface and an empty SETTINGS frame: an HTTP/2 connection
/// that then says nothing.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// A complete keep-alive `GET path` (no `Connection: close`).
fn keep_alive_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: gostream\r\n\r\n").into_bytes()
}

/// Opens `count` idle connections from `from` to `to`: connected, nothing
/// sent.
async fn idle_flood(
    from: std::net::IpAddr,
    to: std::net::SocketAddr,
    count: usize,
) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        held.push(connect_from(from, to, None).await);
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_past_the_limit_make_room_for_a_legitimate_client() {
    // 300 idle connections per listener against --max-connections 200;
    // timeouts long enough (60 s) that only eviction can make room.
    let mut broker = Setup::new()
        .flag("--max-connections", 200)
        .setting("GOSTREAM_IDLE_TIMEOUT_MS", 60_000)
        .setting("GOSTREAM_HEADER_TIMEOUT_MS", 60_000)
        .start()
        .await;
    let grpc_flood = idle_flood(attacker(2), broker.grpc, 300).await;
    let rest_flood = idle_flood(attacker(2), broker.rest, 300).await;

    // The legitimate client, while all 600 are held.
    let began = Instant::now();
    let call = async {
        let channel = broker.channel().await;
        BrokerServiceClient::new(channel)
            .get_broker(GetBrokerRequest {})
            .await
    };
    match tokio::time::timeout(SERVED_WITHIN, call).await {
        Ok(Ok(_)) => {}
        Ok(Err(status)) => panic!(
            "with 300 idle connections held, a legitimate gRPC call failed after {:?}: {:?} {}",
            began.elapsed(),
            status.code(),
            status.message()
        ),
        Err(_) => panic!(
            "with 300 idle connections held, a legitimate gRPC call took over {SERVED_WITHIN:?}"
        ),
    }
    let began = Instant::now();
    let response = within(
        "a legitimate REST call under the flood",
        SERVED_WITHIN,
        broker.http().get(broker.rest_url("/v1/broker")).send(),
    )
    .await
    .unwrap_or_else(|e| panic!("a legitimate REST call under the flood: {e}"));
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(
        status,
        200,
        "with 300 idle connections held, a legitimate REST call after {:?}: {body}",
        began.elapsed()
    );
    broker.assert_serving("with the flood still held").await;
    drop((grpc_flood, rest_flood));
    broker.assert_serving("after the flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let mut broker = Setup::new()
        .setting("GOSTREAM_IDLE_TIMEOUT_MS", 300)
        .setting("GOSTREAM_HEADER_TIMEOUT_MS", 60_000)
        .start()
        .await;
    // HTTP/1.1 on both listeners: one request answered, then silence.
    let mut grpc_web = b"POST /gostream.v1.BrokerService/GetBroker HTTP/1.1\r\nHost: gostream\r\ncontent-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\nContent-Length: 5\r\n\r\n".to_vec();
    grpc_web.extend_from_slice(&frame(0, &[]));
    for (listener, addr, request) in [
        ("REST", broker.rest, keep_alive_get("/v1/broker")),
        ("gRPC (grpc-web over HTTP/1.1)", broker.grpc, grpc_web),
    ] {
        let mut stream = connect_from(attacker(2), addr, None).await;
        stream.write_all(&request).await.expect("send a request");
        // The answer arrives; the connection stays open for the next
        // request until the idle timeout closes it.
        let received =
            read_until_closed(&mut stream, CUT_WITHIN + Duration::from_millis(300)).await;
        let reply = HttpReply::parse(&received.bytes);
        assert!(
            reply.is_some(),
            "{listener}: the keep-alive request was not answered: {:?}",
            String::from_utf8_lossy(&received.bytes)
        );
        assert!(
            received.closed && received.after <= CUT_WITHIN + Duration::from_millis(300),
            "{listener}: an idle keep-alive connection with --idle-timeout-ms 300 was still open after {:?}",
            received.after
        );
    }
    // HTTP/2 on the gRPC listener: preface and SETTINGS, then silence.
    let mut stream = connect_from(attacker(2), broker.grpc, None).await;
    stream
        .write_all(H2_PREFACE)
        .await
        .expect("send the preface");
    let received = read_until_closed(&mut stream, CUT_WITHIN + Duration::from_millis(300)).await;
    assert!(
        received.closed,
        "gRPC (HTTP/2): an idle connection with --idle-timeout-ms 300 was still open after {:?}",
        received.after
    );
    broker.assert_serving("after the idle connections").await;
}

/// The frame types in a run of HTTP/2 frames sent by the server.
fn h2_frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let length =
            usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + length).min(bytes.len())..];
    }
    types
}

/// A dead HTTP/2 peer: after its preface the client answers nothing, PINGs
/// included. With
/// `--http2-keepalive-interval-ms 200 --http2-keepalive-timeout-ms 200`
/// the broker pings it and closes it within 1.5 s; the idle timeout (60 s)
/// plays no part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_http2_peer_is_closed_by_keepalive_pings() {
    let mut broker = Setup::new()
        .flag("--http2-keepalive-interval-ms", 200)
        .flag("--http2-keepalive-timeout-ms", 200)
        .setting("GOSTREAM_IDLE_TIMEOUT_MS", 60_000)
        .start()
        .await;
    let mut stream = connect_from(attacker(2), broker.grpc, None).await;
    stream
        .write_all(H2_PREFACE)
        .await
        .expect("send the preface");
    let received = read_until_closed(&mut stream, Duration::from_millis(1500)).await;
    assert!(
        received.closed,
        "a peer that answers no PING was still connected after {:?}",
        received.after
    );
    let types = h2_frame_types(&received.bytes);
    assert!(
        types.contains(&0x6),
        "the broker closed the connection without pinging it first: frame types {types:?}"
    );
    broker.assert_serving("after the dead peer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_and_subscriptions_are_not_idle() {
    let mut broker = Setup::new()
        .setting("GOSTREAM_IDLE_TIMEOUT_MS", 300)
        .start()
        .await;
    let channel = broker.channel().await;
    let topic = "quiet";
    create_topic(&channel, topic, None).await;
    create_consumer(&channel, topic, "poller").await;

    // A gRPC long-poll of 2 s on an empty topic: answered, empty, at its end.
    let began = Instant::now();
    let mut client = consumers(&channel);
    let fetch = client.fetch(FetchRequest {
        topic: topic.to_owned(),
        consumer: "poller".to_owned(),
        max_wait: Some(PbDuration {
            seconds: 2,
            nanos: 0,
        }),
        ..FetchRequest::default()
    });
    let answer = within("a 2 s long-poll", Duration::from_secs(5), fetch)
        .await
        .unwrap_or_else(|s| {
            panic!(
                "a gRPC long-poll (maxWait 2 s) under --idle-timeout-ms 300 failed after {:?}: {:?} {}",
                began.elapsed(),
                s.code(),
                s.message()
            )
        });
    assert!(answer.into_inner().messages.is_empty());
    assert!(
        began.elapsed() >= Duration::from_millis(1900),
        "answered early"
    );

    // A REST long-poll of 2 s, on a connection that carries nothing else.
    let began = Instant::now();
    let response = within(
        "a 2 s REST long-poll",
        Duration::from_secs(5),
        broker
            .http()
            .get(broker.rest_url(&format!(
                "/v1/topics/{topic}/consumers/poller:fetch?maxWait=2s"
            )))
            .send(),
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "a REST long-poll (maxWait 2 s) under --idle-timeout-ms 300 failed after {:?}: {e}",
            began.elapsed()
        )
    });
    assert_eq!(response.status(), 200, "the REST long-poll");
    assert!(
        began.elapsed() >= Duration::from_millis(1900),
        "answered early"
    );

    // A gRPC Subscribe and an SSE subscription held 1.5 s without a message,
    // then one is published: both streams deliver it.
    let mut stream = within(
        "Subscribe",
        PATIENCE,
        consumers(&channel).subscribe(SubscribeRequest {
            topic: topic.to_owned(),
            ..SubscribeRequest::default()
        }),
    )
    .await
    .expect("a subscription")
    .into_inner();
    let mut sse = connect_from(LEGIT, broker.rest, None).await;
    sse.write_all(&keep_alive_get(&format!("/v1/topics/{topic}:subscribe")))
        .await
        .expect("send the SSE request");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    publish(&channel, topic, vec![b"still-here".to_vec()])
        .await
        .expect("publish");
    let message = within(
        "the held gRPC stream",
        Duration::from_secs(5),
        stream.message(),
    )
    .await
    .unwrap_or_else(|s| {
        panic!(
            "a Subscribe held 1.5 s under --idle-timeout-ms 300 was cut: {:?} {}",
            s.code(),
            s.message()
        )
    })
    .expect("the gRPC stream ended: cut as idle");
    assert_eq!(message.messages.len(), 1);
    // The SSE stream: read until the message's value (base64 of
    // "still-here") shows up; an end of stream means it was cut.
    let wanted = "c3RpbGwtaGVyZQ==";
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(wanted) {
        match tokio::time::timeout_at(
            deadline,
            tokio::io::AsyncReadExt::read(&mut sse, &mut buffer),
        )
        .await
        {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buffer[..n]),
            Ok(_) => panic!(
                "an SSE subscription held 1.5 s under --idle-timeout-ms 300 was cut; it sent:\n{}",
                String::from_utf8_lossy(&seen)
            ),
            Err(_) => panic!(
                "the SSE stream did not deliver the message within 5 s; it sent:\n{}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    broker.assert_serving("after the long-polls").await;
}

/// Sends `head` one byte every 50 ms (then header lines forever, for at
/// most 3 s) while reading; returns what was received and whether (and
/// when) the server closed.
async fn slowloris(addr: std::net::SocketAddr, head: &[u8]) -> (Vec<u8>, Option<Duration>) {
    let stream = connect_from(attacker(2), addr, None).await;
    let (mut reader, mut writer) = stream.into_split();
    let began = Instant::now();
    let reading = tokio::spawn(async move {
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            match tokio::io::AsyncReadExt::read(&mut reader, &mut buffer).await {
                Ok(0) | Err(_) => return (bytes, began.elapsed()),
                Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            }
        }
    });
    let trickle = head.iter().chain(b"X-Slow: 1\r\n".iter().cycle());
    let end = began + Duration::from_secs(3);
    for &byte in trickle {
        if reading.is_finished() || Instant::now() >= end {
            break;
        }
        if writer.write_all(&[byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(writer);
    if reading.is_finished() {
        let (bytes, after) = reading.await.expect("the reader");
        (bytes, Some(after))
    } else {
        reading.abort();
        (Vec::new(), None)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_at_the_header_timeout() {
    let mut broker = Setup::new()
        .setting("GOSTREAM_HEADER_TIMEOUT_MS", 300)
        .setting("GOSTREAM_IDLE_TIMEOUT_MS", 60_000)
        .start()
        .await;
    let head = b"GET /v1/broker HTTP/1.1\r\nHost: gostream\r\n";
    for (listener, addr) in [("REST", broker.rest), ("gRPC", broker.grpc)] {
        let (bytes, closed) = slowloris(addr, head).await;
        let after = closed.unwrap_or_else(|| {
            panic!("{listener}: headers at 1 byte / 50 ms with --header-timeout-ms 300 were still read after 3 s")
        });
        assert!(
            after <= CUT_WITHIN,
            "{listener}: slowloris cut only after {after:?} (--header-timeout-ms 300)"
        );
        if let Some(reply) = HttpReply::parse(&bytes) {
            assert_ne!(reply.status, 200, "{listener}: slowloris was answered 200");
        }
    }
    broker.assert_serving("after slowloris").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_body_fails_at_the_body_timeout() {
    let mut broker = Setup::new()
        .setting("GOSTREAM_BODY_TIMEOUT_MS", 300)
        .setting("GOSTREAM_IDLE_TIMEOUT_MS", 60_000)
        .setting("GOSTREAM_HEADER_TIMEOUT_MS", 60_000)
        .start()
        .await;

    // REST: 10 of 1000 announced bytes.
    let mut stream = connect_from(attacker(2), broker.rest, None).await;
    let request = "POST /v1/topics HTTP/1.1\r\nHost: gostream\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\": \"";
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send a partial body");
    let received = read_until_closed(&mut stream, CUT_WITHIN).await;
    match HttpReply::parse(&received.bytes) {
        Some(reply) => {
            let body = reply.json();
            assert_eq!(reply.status, 408, "a partial REST body: {}", reply.text());
            assert_eq!(body["code"], 4, "DEADLINE_EXCEEDED: {body}");
            let message = body["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("--body-timeout-ms"),
                "the message names --body-timeout-ms: {message:?}"
            );
        }
        None => assert!(
            received.closed,
            "a partial REST body (10 of 1000 bytes) with --body-timeout-ms 300: no answer and still open after {CUT_WITHIN:?}"
        ),
    }

    // grpc-web: a frame announcing 1000 bytes, 10 sent.
    let mut stream = connect_from(attacker(2), broker.grpc, None).await;
    let mut request = format!(
        "POST /gostream.v1.TopicService/CreateTopic HTTP/1.1\r\nHost: gostream\r\ncontent-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\nContent-Length: {}\r\n\r\n",
        5 + 1000
    )
    .into_bytes();
    request.extend_from_slice(&frame(0, &[0u8; 1000])[..15]);
    stream
        .write_all(&request)
        .await
        .expect("send a partial grpc-web body");
    let received = read_until_closed(&mut stream, CUT_WITHIN).await;
    match HttpReply::parse(&received.bytes) {
        Some(reply) => {
            let (status, message) = grpc_web_status(&reply);
            assert_eq!(
                status,
                Some(4),
                "a partial grpc-web body: DEADLINE_EXCEEDED expected, got HTTP {} {message:?}",
                reply.status
            );
            assert!(
                message.contains("--body-timeout-ms"),
                "the message names --body-timeout-ms: {message:?}"
            );
        }
        None => assert!(
            received.closed,
            "a partial grpc-web body with --body-timeout-ms 300: no answer and still open after {CUT_WITHIN:?}"
        ),
    }
    broker.assert_serving("after the partial bodies").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_more_than_its_share_of_connections() {
    let mut broker = Setup::new()
        .setting("GOSTREAM_MAX_CONNECTIONS_PER_ADDRESS", 20)
        .start()
        .await;
    let channel = broker.channel().await;
    let topic = "waiting";
    create_topic(&channel, topic, None).await;
    create_consumer(&channel, topic, "c").await;

    // 20 REST connections from 127.0.0.3, each busy with a 60 s long-poll:
    // none of them is idle, so none can be evicted.
    let mut busy = Vec::new();
    for _ in 0..20 {
        let mut stream = connect_from(attacker(3), broker.rest, None).await;
        stream
            .write_all(&keep_alive_get(&format!(
                "/v1/topics/{topic}/consumers/c:fetch?maxWait=60s"
            )))
            .await
            .expect("send a long-poll");
        busy.push(stream);
    }
    // The same from 127.0.0.3 on the gRPC listener.
    let mut polls = Vec::new();
    for _ in 0..20 {
        let channel = broker.channel_from(attacker(3)).await;
        let mut client = consumers(&channel);
        polls.push(tokio::spawn(async move {
            let _channel = channel;
            client
                .fetch(FetchRequest {
                    topic: "waiting".to_owned(),
                    consumer: "c".to_owned(),
                    max_wait: Some(PbDuration {
                        seconds: 60,
                        nanos: 0,
                    }),
                    ..FetchRequest::default()
                })
                .await
        }));
    }
    // Let every long-poll reach the broker.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The 21st REST connection from 127.0.0.3 is refused with one 503.
    let mut extra = connect_from(attacker(3), broker.rest, None).await;
    let _ = extra
        .write_all(b"GET /v1/broker HTTP/1.1\r\nHost: gostream\r\nConnection: close\r\n\r\n")
        .await;
    let received = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    let reply = HttpReply::parse(&received.bytes).unwrap_or_else(|| {
        panic!(
            "the 21st connection from 127.0.0.3 got no answer: {:?}",
            String::from_utf8_lossy(&received.bytes)
        )
    });
    assert_eq!(
        reply.status,
        503,
        "the 21st REST connection from 127.0.0.3 (--max-connections-per-address 20): {}",
        reply.text()
    );
    let body = reply.json();
    assert_eq!(body["code"], 14, "UNAVAILABLE: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("--max-connections-per-address") && message.contains("127.0.0.3"),
        "the refusal names the flag and the address: {message:?}"
    );

    // The 21st gRPC connection from 127.0.0.3: UNAVAILABLE naming the flag.
    let extra = tonic::transport::Endpoint::from_shared(format!("http://{}", broker.grpc))
        .expect("a valid url")
        .local_address(Some(attacker(3)))
        .connect_lazy();
    let refused = within(
        "the 21st gRPC connection's call",
        PATIENCE,
        BrokerServiceClient::new(extra).get_broker(GetBrokerRequest {}),
    )
    .await;
    match refused {
        Ok(_) => panic!(
            "the 21st gRPC connection from 127.0.0.3 was served (--max-connections-per-address 20)"
        ),
        Err(status) => {
            assert_eq!(
                status.code(),
                tonic::Code::Unavailable,
                "{}",
                status.message()
            );
            assert!(
                status.message().contains("--max-connections-per-address"),
                "the refusal names the flag: {:?}",
                status.message()
            );
        }
    }

    // 127.0.0.1 is served meanwhile, and the long-polls are still waiting.
    broker.assert_serving("with 127.0.0.3 at its limit").await;
    for poll in &polls {
        assert!(
            !poll.is_finished(),
            "a busy long-poll from 127.0.0.3 was ended"
        );
    }
    for poll in polls {
        poll.abort();
    }
    drop(busy);
}
