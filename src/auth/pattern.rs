//! Topic patterns of grants: `*` (every topic), a glob where `*` matches any
//! run of characters (`orders.*`, `*.audit`), or an exact topic name.

use std::fmt;

/// A validated topic pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern(String);

impl TopicPattern {
    /// Parses `text`: topic-name characters (`[A-Za-z0-9._-]`) and `*`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("a topic pattern is required".to_owned());
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '*')))
        {
            return Err(format!(
                "topic pattern {text:?} has {bad:?}; use topic-name characters ([A-Za-z0-9._-]) and `*`"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// Whether the pattern matches every topic.
    pub fn is_everything(&self) -> bool {
        self.0.chars().all(|c| c == '*')
    }

    /// Whether `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        glob(self.0.as_bytes(), topic.as_bytes())
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `*`-only glob matching, linear in the text: on a mismatch, the last `*`
/// takes one more character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, topic: &str) -> bool {
        TopicPattern::parse(pattern).unwrap().matches(topic)
    }

    #[test]
    fn star_matches_everything() {
        assert!(matches("*", "orders"));
        assert!(matches("*", "a.b-c_d"));
        assert!(TopicPattern::parse("*").unwrap().is_everything());
        assert!(!TopicPattern::parse("orders.*").unwrap().is_everything());
    }

    #[test]
    fn globs_match_any_run_of_characters() {
        assert!(matches("orders.*", "orders.eu"));
        assert!(matches("orders.*", "orders."));
        assert!(matches("orders.*", "orders.eu.paid"));
        assert!(!matches("orders.*", "orders"));
        assert!(!matches("orders.*", "xorders.eu"));
        assert!(matches("*.audit", "billing.audit"));
        assert!(!matches("*.audit", "billing.audit2"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(matches("a*b*c", "abc"));
        assert!(!matches("a*b*c", "acb"));
    }

    #[test]
    fn exact_names_match_themselves_only() {
        assert!(matches("orders", "orders"));
        assert!(!matches("orders", "orders2"));
        assert!(!matches("orders", "Orders"));
    }

    #[test]
    fn patterns_use_topic_name_characters() {
        assert!(TopicPattern::parse("").is_err());
        assert!(
            TopicPattern::parse("orders/eu")
                .unwrap_err()
                .contains("'/'")
        );
        assert!(TopicPattern::parse("orders?").is_err());
    }
}
