//! Reading a scrape: each sample line `name{label="value",...} value` into
//! a [`Sample`]; comments (`# HELP`, `# TYPE`, `# EOF`) are skipped.

use std::collections::BTreeMap;

use crate::common::{TestServer, within};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Debug)]
pub(super) struct Samples(Vec<Sample>);

impl Samples {
    /// Parses the text of a scrape, panicking on a line it cannot read.
    pub fn parse(text: &str) -> Self {
        Self(
            text.lines()
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(|line| parse_line(line).unwrap_or_else(|| panic!("not a sample: {line:?}")))
                .collect(),
        )
    }

    /// The samples named `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.0.iter().filter(move |s| s.name == name)
    }

    /// The value of the sample `name` with exactly these labels, if any.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self.named(name)
            .find(|s| s.labels == wanted)
            .map(|s| s.value)
    }

    /// The value of the sample `name` with exactly these labels; the test
    /// fails, listing the series of that name, if there is none.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| {
            let present: Vec<_> = self.named(name).map(|s| &s.labels).collect();
            panic!("no {name} with {labels:?}; present: {present:#?}")
        })
    }

    /// Every sample whose labels include `key="value"`.
    pub fn labelled<'a>(&'a self, key: &'a str, value: &'a str) -> Vec<&'a Sample> {
        self.0
            .iter()
            .filter(|s| s.labels.get(key).is_some_and(|v| v == value))
            .collect()
    }
}

/// `name{labels} value` or `name value`.
fn parse_line(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(rest) => parse_labels(rest)?,
        None => (BTreeMap::new(), rest),
    };
    let value = rest.trim().split(' ').next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `key="value",...}` and what follows the closing brace. Values may hold
/// the escapes `\\`, `\"` and `\n`.
fn parse_labels(mut rest: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = &after[end + 1..];
    }
}

/// Scrapes one server, counting its scrapes (each is a request the next
/// scrape counts).
pub(super) struct Scraper {
    client: reqwest::Client,
    url: String,
    /// Scrapes answered so far.
    pub scrapes: u64,
}

/// The content type of a scrape: the OpenMetrics text format.
pub(super) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Scraper {
    pub fn new(server: &TestServer) -> Self {
        Self {
            client: reqwest::Client::new(),
            url: server.rest("/metrics"),
            scrapes: 0,
        }
    }

    /// `GET /metrics`: asserts a 200 in the OpenMetrics text format ending
    /// with `# EOF`, and reads it.
    pub async fn scrape(&mut self) -> Samples {
        let response = within("GET /metrics", self.client.get(&self.url).send())
            .await
            .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = within("the /metrics body", response.text())
            .await
            .expect("the /metrics body");
        assert_eq!(status, reqwest::StatusCode::OK, "GET /metrics: {text}");
        assert_eq!(content_type, CONTENT_TYPE);
        assert!(text.ends_with("# EOF\n"), "no EOF marker:\n{text}");
        self.scrapes += 1;
        Samples::parse(&text)
    }

    /// Scrapes until `done` holds for a scrape (what the server does when a
    /// client goes away happens after the client's side returns), within the
    /// patience.
    pub async fn scrape_until(&mut self, what: &str, done: impl Fn(&Samples) -> bool) -> Samples {
        within(what, async {
            loop {
                let samples = self.scrape().await;
                if done(&samples) {
                    return samples;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
    }
}

#[test]
fn sample_lines_are_read_with_their_labels() {
    let samples = Samples::parse(
        "# HELP x_total Things.\n# TYPE x counter\n\
         x_total{a=\"1\",b=\"q\\\"u\\\\o\\nte\"} 3\n\
         y 2.5\n\
         h_bucket{le=\"+Inf\"} 4\n# EOF\n",
    );
    assert_eq!(
        samples.value("x_total", &[("a", "1"), ("b", "q\"u\\o\nte")]),
        3.0
    );
    assert_eq!(samples.value("y", &[]), 2.5);
    assert_eq!(samples.value("h_bucket", &[("le", "+Inf")]), 4.0);
    assert_eq!(samples.get("x_total", &[("a", "1")]), None);
}
