//! Matches a request path against a binding's [`PathPattern`]: the form
//! the generator writes a parsed `google.api.http` path template in (the
//! parsing and the template itself are the generator's).
//!
//! The router only narrows a request down to the bindings that share a
//! route; a custom verb (`.../{consumer}:fetch`) shares its segment with a
//! variable, so the generated dispatcher asks each candidate pattern in
//! turn, most specific first.

/// One segment of a pattern, as the generator wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternSegment {
    /// Matches exactly this text.
    Literal(&'static str),
    /// `*`: any one non-empty segment.
    Any,
    /// `**`: every remaining segment.
    Rest,
}

/// A path template: segments and an optional custom verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathPattern {
    /// The segments after the leading `/`.
    pub segments: &'static [PatternSegment],
    /// The custom verb after the last `:`, if any.
    pub verb: Option<&'static str>,
}

/// The raw (still percent-encoded) segments of a matched path, verb
/// removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captures {
    segments: Vec<String>,
}

impl Captures {
    /// The raw text of segments `start..end` (`end` past the template's
    /// last segment means "to the end of the path"), joined by `/`.
    pub fn span(&self, start: usize, end: usize, pattern: &PathPattern) -> String {
        let end = if pattern.segments.get(end.saturating_sub(1)) == Some(&PatternSegment::Rest) {
            self.segments.len()
        } else {
            end.min(self.segments.len())
        };
        let start = start.min(end);
        self.segments[start..end].join("/")
    }
}

impl PathPattern {
    /// The captures of `path` if this template matches it.
    pub fn captures(&self, path: &str) -> Option<Captures> {
        let path = path.strip_prefix('/')?;
        let path = match self.verb {
            Some(verb) => {
                let (rest, got) = path.rsplit_once(':')?;
                if got != verb {
                    return None;
                }
                rest
            }
            None => path,
        };
        let raw: Vec<&str> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').collect()
        };
        let mut i = 0;
        for segment in self.segments {
            match segment {
                PatternSegment::Literal(literal) => {
                    if raw.get(i) != Some(literal) {
                        return None;
                    }
                }
                PatternSegment::Any => {
                    if raw.get(i).is_none_or(|s| s.is_empty()) {
                        return None;
                    }
                }
                PatternSegment::Rest => {
                    return Some(Captures {
                        segments: raw.iter().map(|s| (*s).to_owned()).collect(),
                    });
                }
            }
            i += 1;
        }
        (i == raw.len()).then(|| Captures {
            segments: raw.iter().map(|s| (*s).to_owned()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FETCH: PathPattern = PathPattern {
        segments: &[
            PatternSegment::Literal("v1"),
            PatternSegment::Literal("topics"),
            PatternSegment::Any,
            PatternSegment::Literal("consumers"),
            PatternSegment::Any,
        ],
        verb: Some("fetch"),
    };
    const GET: PathPattern = PathPattern {
        segments: FETCH.segments,
        verb: None,
    };
    const FILES: PathPattern = PathPattern {
        segments: &[PatternSegment::Literal("files"), PatternSegment::Rest],
        verb: None,
    };

    #[test]
    fn a_verb_is_matched_in_the_last_segment() {
        let captures = FETCH.captures("/v1/topics/t/consumers/c:fetch").unwrap();
        assert_eq!(captures.span(2, 3, &FETCH), "t");
        assert_eq!(captures.span(4, 5, &FETCH), "c");
        assert!(FETCH.captures("/v1/topics/t/consumers/c:commit").is_none());
        assert!(FETCH.captures("/v1/topics/t/consumers/c").is_none());
        assert!(FETCH.captures("/v1/topics/t:fetch/consumers/c").is_none());
    }

    #[test]
    fn a_template_without_a_verb_takes_the_whole_segment() {
        let captures = GET.captures("/v1/topics/t/consumers/c:x").unwrap();
        assert_eq!(captures.span(4, 5, &GET), "c:x");
        assert!(GET.captures("/v1/topics/t/consumers").is_none());
        assert!(GET.captures("/v1/topics/t/consumers/c/d").is_none());
        assert!(GET.captures("/v1/topics//consumers/c").is_none());
        assert!(GET.captures("v1/topics/t/consumers/c").is_none());
    }

    #[test]
    fn rest_takes_every_remaining_segment() {
        let captures = FILES.captures("/files/a/b%2Fc/d").unwrap();
        assert_eq!(captures.span(1, 2, &FILES), "a/b%2Fc/d");
        assert!(FILES.captures("/other/a").is_none());
    }
}
