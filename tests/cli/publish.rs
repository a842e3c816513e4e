//! `gostream publish`: one message from the command line, or every line of
//! stdin in batches; read back with `consume`.

use super::{broker::Broker, lines};

#[tokio::test]
async fn publish_one_message_with_a_key_and_headers() {
    let broker = Broker::start().await;
    broker.ok(&["topics", "create", "p"]).await;

    let ack = broker.ok(&["publish", "p", "hello world"]).await;
    assert_eq!(ack, "published 1 message at offset 0\n");
    let ack = broker
        .json(&[
            "publish",
            "p",
            "--key",
            "k-1",
            "--header",
            "source=cli",
            "--header",
            "n=2",
            "second",
        ])
        .await;
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0]["firstOffset"], "1");
    assert_eq!(ack[0]["count"], "1");

    let read = broker.json(&["consume", "p"]).await;
    assert_eq!(read.len(), 2);
    assert_eq!(read[1]["offset"], "1");
    assert_eq!(read[1]["key"], "ay0x", "base64 of k-1");
    assert_eq!(read[1]["value"], "c2Vjb25k", "base64 of second");
    assert_eq!(read[1]["headers"]["source"], "cli");
    assert_eq!(read[1]["headers"]["n"], "2");
    // RFC 3339 in UTC ending in Z, as over gRPC.
    let time = read[1]["publishTime"].as_str().unwrap_or_default();
    assert!(time.contains('T') && time.ends_with('Z'), "{time:?}");

    let text = broker.ok(&["consume", "p"]).await;
    assert_eq!(text, "0\t\thello world\n1\tk-1\tsecond\n");
}

/// 1200 lines from stdin go out in batches of at most 500, at consecutive
/// offsets, and read back in order.
#[tokio::test]
async fn publish_stdin_lines_in_batches() {
    let broker = Broker::start().await;
    broker.ok(&["topics", "create", "lines"]).await;
    let input: String = (0..1200).map(|i| format!("line {i}\n")).collect();

    let acks = broker
        .run_with_stdin(&["publish", "lines", "-", "--json"], Some(input.as_bytes()))
        .await
        .json();
    assert!(acks.len() >= 3, "at least three batches: {acks:?}");
    let mut next = 0;
    for ack in &acks {
        let first: u64 = ack["firstOffset"].as_str().unwrap_or("0").parse().unwrap();
        let count: u64 = ack["count"].as_str().expect("a count").parse().unwrap();
        assert_eq!(first, next, "consecutive offsets: {acks:?}");
        assert!((1..=500).contains(&count), "{acks:?}");
        next += count;
    }
    assert_eq!(next, 1200);

    let read = broker.ok(&["consume", "lines"]).await;
    let expected: Vec<String> = (0..1200).map(|i| format!("{i}\t\tline {i}")).collect();
    assert_eq!(lines(&read), expected);
}

/// Without VALUE, a stdin that is not a terminal is read too; the text
/// acknowledgement names the offsets; empty lines are empty messages, and
/// bytes that are not UTF-8 are escaped when printed.
#[tokio::test]
async fn publish_stdin_without_a_dash() {
    let broker = Broker::start().await;
    broker.ok(&["topics", "create", "raw"]).await;
    let acks = broker
        .run_with_stdin(&["publish", "raw"], Some(b"a\tb\n\nc\xff\\\n"))
        .await
        .ok();
    assert_eq!(acks, "published 3 messages at offsets 0..2\n");
    let read = broker.ok(&["consume", "raw"]).await;
    assert_eq!(read, "0\t\ta\\tb\n1\t\t\n2\t\tc\\xff\\\\\n");

    // Nothing on stdin: nothing published, and that is not an error.
    let none = broker.run_with_stdin(&["publish", "raw"], Some(b"")).await;
    assert_eq!(none.ok(), "");
}

/// Lines of stdin go out as frames of one PublishStream: the answers come
/// back numbered, in order, and every line lands once, in order.
#[tokio::test]
async fn publish_stdin_goes_over_one_stream_in_order() {
    let broker = Broker::start().await;
    broker.ok(&["topics", "create", "streamed"]).await;
    let input: String = (0..1700).map(|i| format!("s{i}\n")).collect();

    let acks = broker
        .run_with_stdin(&["publish", "streamed", "--json"], Some(input.as_bytes()))
        .await
        .json();
    assert!(acks.len() >= 4, "at least four frames: {acks:?}");
    let mut next = 0;
    for (i, ack) in acks.iter().enumerate() {
        let frame = ack["frame"].as_str().expect("a frame number");
        assert_eq!(frame, i.to_string(), "answers in frame order: {acks:?}");
        assert!(ack.get("error").is_none(), "{ack}");
        let first: u64 = ack["firstOffset"].as_str().unwrap_or("0").parse().unwrap();
        let count: u64 = ack["count"].as_str().expect("a count").parse().unwrap();
        assert_eq!(first, next, "consecutive offsets: {acks:?}");
        next += count;
    }
    assert_eq!(next, 1700);

    let read = broker.ok(&["consume", "streamed"]).await;
    let expected: Vec<String> = (0..1700).map(|i| format!("{i}\t\ts{i}")).collect();
    assert_eq!(lines(&read), expected);
}

/// A frame the broker refuses (a line over its --max-message-bytes, in the
/// middle) is reported with its number and lines, and the command exits 1;
/// every other frame is appended, in order.
#[tokio::test]
async fn a_refused_frame_is_reported_and_the_others_are_appended() {
    let broker = Broker::start_with(&["--max-message-bytes", "64"], "http").await;
    broker.ok(&["topics", "create", "part"]).await;
    const BAD: usize = 700;
    let mut input = String::new();
    for i in 0..1200 {
        if i == BAD {
            input.push_str(&"x".repeat(200));
            input.push('\n');
        } else {
            input.push_str(&format!("p{i}\n"));
        }
    }
    let run = broker
        .run_with_stdin(&["publish", "part"], Some(input.as_bytes()))
        .await;
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: frame "))
        .collect();
    assert_eq!(errors.len(), 1, "one frame refused: {}", run.stderr);
    // `error: frame N (lines A..B): CODE: message`, the bad line among them.
    let (frame, rest) = errors[0]["error: frame ".len()..]
        .split_once(" (lines ")
        .unwrap_or_else(|| panic!("{}", errors[0]));
    let frame: usize = frame.parse().expect("a frame number");
    let (range, reason) = rest.split_once("): ").expect("a reason");
    let (first, last) = range.split_once("..").expect("a line range");
    let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
    // Lines are numbered from 1.
    let bad_line = BAD + 1;
    assert!(first <= bad_line && bad_line <= last, "{}", errors[0]);
    let code = reason.split(": ").next().unwrap_or_default();
    assert!(
        !code.is_empty() && code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
        "a code name, then the message: {}",
        errors[0]
    );
    assert!(
        run.stderr.contains("1 of ") && run.stderr.contains(" frames were not appended"),
        "{}",
        run.stderr
    );
    // One acknowledgement per other frame.
    let acks = lines(&run.stdout);
    assert!(frame <= acks.len(), "{}", run.stdout);
    assert!(acks.iter().all(|a| a.starts_with("published ")), "{acks:?}");

    let read = broker.ok(&["consume", "part"]).await;
    let expected: Vec<String> = (0..1200)
        .filter(|i| !(first - 1..last).contains(i))
        .enumerate()
        .map(|(offset, i)| format!("{offset}\t\tp{i}"))
        .collect();
    assert_eq!(lines(&read), expected);
}
