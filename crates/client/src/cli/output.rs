//! Printing results: readable text (aligned tables for lists, `name: value`
//! blocks for one resource, tab-separated lines for messages), or with
//! `--json` one JSON object per line in the proto3 JSON mapping (the pbjson
//! serde of the response messages).
//!
//! Output is buffered and flushed after each batch, so a long `consume`
//! shows messages as they come and a large one is not slowed by a write per
//! line.

use std::{
    io::{BufWriter, Stdout, Write as _},
    time::Duration,
};

use serde::Serialize;

use super::Failure;

/// Where a command prints its results.
#[derive(Debug)]
pub struct Printer {
    /// `--json`: one JSON object per line instead of text.
    json: bool,
    out: BufWriter<Stdout>,
}

impl Printer {
    /// A printer to stdout, in JSON if `json`.
    pub fn new(json: bool) -> Self {
        Self {
            json,
            out: BufWriter::new(std::io::stdout()),
        }
    }

    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Prints `value` as one line of JSON.
    pub fn json_line<T: Serialize>(&mut self, value: &T) -> Result<(), Failure> {
        gostream_api::json::to_writer(&mut self.out, value).map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Prints one line of text.
    pub fn line(&mut self, text: &str) -> Result<(), Failure> {
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Prints a table: the header, then each row, in columns two spaces
    /// apart (the last column is not padded).
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) -> Result<(), Failure> {
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
        for row in std::iter::once(&header).chain(rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  "));
                }
            }
            self.line(line.trim_end())?;
        }
        Ok(())
    }

    /// Prints `name: value` lines, the values aligned.
    pub fn fields(&mut self, fields: &[(&str, String)]) -> Result<(), Failure> {
        let width = fields.iter().map(|(n, _)| n.len() + 1).max().unwrap_or(0);
        for (name, value) in fields {
            let label = format!("{name}:");
            self.line(&format!("{label:<width$} {value}"))?;
        }
        Ok(())
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> Result<(), Failure> {
        self.out.flush()?;
        Ok(())
    }
}

/// Bytes as text: UTF-8 as it is, except that `\` `\t` `\n` `\r` and other
/// control characters are escaped (`\\`, `\t`, `\n`, `\r`, `\x1b`), and so is
/// every byte that is not UTF-8 (`\xff`). The result holds no tab or
/// newline, so it fits in a tab-separated line.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    if let Ok(byte) = u8::try_from(u32::from(c)) {
                        out.push_str(&format!("\\x{byte:02x}"));
                    } else {
                        out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// A timestamp as RFC 3339 text in UTC ending in `Z` (its proto3 JSON
/// form), or `-` if unset.
pub fn timestamp(time: Option<&pbjson_types::Timestamp>) -> String {
    time.and_then(gostream_api::json::timestamp)
        .unwrap_or_else(|| "-".to_owned())
}

/// A retention count limit as text: `unlimited` for 0.
pub fn limit(value: Option<u64>) -> String {
    match value {
        None | Some(0) => "unlimited".to_owned(),
        Some(n) => n.to_string(),
    }
}

/// A retention age limit as text: `forever` for 0.
pub fn age(value: Option<pbjson_types::Duration>) -> String {
    match value.and_then(|d| Duration::try_from(d).ok()) {
        None => "forever".to_owned(),
        Some(d) if d.is_zero() => "forever".to_owned(),
        Some(d) => super::args::format_duration(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_text_and_escapes_the_rest() {
        assert_eq!(escape(b"hello, world"), "hello, world");
        assert_eq!(escape("héllo ✓".as_bytes()), "héllo ✓");
        assert_eq!(escape(b"a\tb\nc\r\\d"), "a\\tb\\nc\\r\\\\d");
        assert_eq!(escape(b"\x1b[0m"), "\\x1b[0m");
        assert_eq!(escape(b"ok\xff\xfe!"), "ok\\xff\\xfe!");
        assert_eq!(escape(b""), "");
    }

    #[test]
    fn timestamps_are_rfc_3339() {
        let time = pbjson_types::Timestamp {
            seconds: 1_714_564_800,
            nanos: 0,
        };
        assert_eq!(timestamp(Some(&time)), "2024-05-01T12:00:00Z");
        assert_eq!(timestamp(None), "-");
    }
}
