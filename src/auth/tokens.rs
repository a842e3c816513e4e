//! The token table: parsed from token lines, looked up in constant time.
//!
//! A line is `<token> <role> <topic-pattern>`, whitespace-separated; `#`
//! starts a comment and blank lines are ignored. A token on several lines
//! has several grants. Errors name the source and the line, never the token.

use std::{collections::HashMap, path::Path, sync::Arc};

use subtle::{Choice, ConditionallySelectable as _, ConstantTimeEq as _};

use super::{grant::Grant, pattern::TopicPattern};

/// The tokens the broker accepts and their grants.
#[derive(Default)]
pub struct Tokens {
    entries: Vec<(Vec<u8>, Arc<[Grant]>)>,
    /// The longest token: every lookup compares this many bytes against
    /// every token, so its time does not depend on which token is close.
    width: usize,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// Token lines being collected from one or more sources.
#[derive(Default)]
pub struct TokensBuilder {
    grants: HashMap<String, Vec<Grant>>,
    order: Vec<String>,
}

impl TokensBuilder {
    /// Adds the lines of the file at `path`.
    pub fn add_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the tokens file {}: {e}", path.display()))?;
        self.add_lines(&format!("tokens file {}", path.display()), text.lines())
    }

    /// Adds `text` given inline (flag or environment): lines separated by
    /// newlines or `;`.
    pub fn add_inline(&mut self, source: &str, text: &str) -> Result<(), String> {
        self.add_lines(source, text.split(['\n', ';']))
    }

    fn add_lines<'a>(
        &mut self,
        source: &str,
        lines: impl Iterator<Item = &'a str>,
    ) -> Result<(), String> {
        for (index, line) in lines.enumerate() {
            let line = line.split_once('#').map_or(line, |(before, _)| before);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = || format!("{source}, line {}", index + 1);
            let grant = match fields.as_slice() {
                [] => continue,
                [_, role, pattern] => Grant {
                    role: role.parse().map_err(|e| format!("{}: {e}", at()))?,
                    topics: TopicPattern::parse(pattern).map_err(|e| format!("{}: {e}", at()))?,
                },
                other => {
                    return Err(format!(
                        "{}: expected `<token> <role> <topic-pattern>`, got {} field{}",
                        at(),
                        other.len(),
                        if other.len() == 1 { "" } else { "s" }
                    ));
                }
            };
            let token = fields[0].to_owned();
            let grants = self.grants.entry(token.clone()).or_default();
            if grants.is_empty() {
                self.order.push(token);
            }
            if !grants.contains(&grant) {
                grants.push(grant);
            }
        }
        Ok(())
    }

    /// Whether any token was added.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The table.
    pub fn build(mut self) -> Tokens {
        let entries: Vec<_> = self
            .order
            .iter()
            .map(|token| {
                let grants = self.grants.remove(token).unwrap_or_default();
                (token.as_bytes().to_vec(), Arc::from(grants))
            })
            .collect();
        let width = entries.iter().map(|(t, _)| t.len()).max().unwrap_or(0);
        Tokens { entries, width }
    }
}

impl Tokens {
    /// The grants of `token`, if it is known. Every stored token is
    /// compared over the same number of bytes with `subtle`, and the match
    /// is selected without branching, so the time taken says nothing about
    /// how close `token` is to a real one.
    pub fn lookup(&self, token: &[u8]) -> Option<Arc<[Grant]>> {
        let width = self.width.max(token.len());
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, (stored, _)) in self.entries.iter().enumerate() {
            let mut equal = (token.len() as u64).ct_eq(&(stored.len() as u64));
            for at in 0..width {
                let a = token.get(at).copied().unwrap_or(0);
                let b = stored.get(at).copied().unwrap_or(0);
                equal &= a.ct_eq(&b);
            }
            index.conditional_assign(&(i as u64), equal);
            found |= equal;
        }
        if bool::from(found) {
            usize::try_from(index)
                .ok()
                .and_then(|i| self.entries.get(i))
                .map(|(_, grants)| grants.clone())
        } else {
            None
        }
    }

    /// How many distinct tokens there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A grant of `role` on `pattern`, for tests.
#[cfg(test)]
pub(crate) fn grant(role: super::grant::Role, pattern: &str) -> Grant {
    Grant {
        role,
        topics: TopicPattern::parse(pattern).expect("valid pattern"),
    }
}

#[cfg(test)]
mod tests {
    use super::{super::grant::Role, *};

    fn parse(text: &str) -> Result<Tokens, String> {
        let mut builder = TokensBuilder::default();
        builder.add_lines("tokens file t", text.lines())?;
        Ok(builder.build())
    }

    #[test]
    fn lines_give_tokens_their_grants() {
        let tokens = parse(
            "# comment\n\
             \n\
             s3cret admin *\n\
             p1   produce\torders.*   # trailing comment\n\
             p1 consume audit\n",
        )
        .unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(
            &*tokens.lookup(b"s3cret").unwrap(),
            [grant(Role::Admin, "*")]
        );
        assert_eq!(
            &*tokens.lookup(b"p1").unwrap(),
            [
                grant(Role::Produce, "orders.*"),
                grant(Role::Consume, "audit")
            ]
        );
        assert!(tokens.lookup(b"p").is_none());
        assert!(tokens.lookup(b"p12").is_none());
        assert!(tokens.lookup(b"").is_none());
        assert!(tokens.lookup(b"S3CRET").is_none());
    }

    #[test]
    fn bad_lines_name_the_source_and_line_but_not_the_token() {
        let error = parse("ok admin *\nhunter2 root *\n").err().unwrap();
        assert!(error.starts_with("tokens file t, line 2: "), "{error}");
        assert!(error.contains("unknown role \"root\""), "{error}");
        assert!(!error.contains("hunter2"), "{error}");

        let error = parse("\n\nhunter2 admin\n").err().unwrap();
        assert!(error.starts_with("tokens file t, line 3: "), "{error}");
        assert!(error.contains("got 2 fields"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");

        let error = parse("hunter2 admin orders/eu\n").err().unwrap();
        assert!(
            error.contains("line 1") && error.contains("orders/eu"),
            "{error}"
        );

        let error = parse("hunter2 admin * extra\n").err().unwrap();
        assert!(error.contains("got 4 fields"), "{error}");
    }

    #[test]
    fn inline_lines_are_separated_by_semicolons_or_newlines() {
        let mut builder = TokensBuilder::default();
        builder
            .add_inline("--auth-tokens", "a admin *; b produce x\nc consume y;")
            .unwrap();
        builder.add_inline("--auth-tokens", "a consume z").unwrap();
        let tokens = builder.build();
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens.lookup(b"a").unwrap().len(), 2);
        let error = TokensBuilder::default()
            .add_inline("--auth-tokens", "a admin *;b nope x")
            .unwrap_err();
        assert!(error.starts_with("--auth-tokens, line 2: "), "{error}");
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let error = TokensBuilder::default()
            .add_file(Path::new("/nonexistent/tokens"))
            .unwrap_err();
        assert!(error.contains("/nonexistent/tokens"), "{error}");
    }
}
