//! Parses a `google.api.http` path template.
//!
//! The grammar (from `google/api/http.proto`):
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```
//!
//! A variable without `= Segments` matches one segment (`{name}` is
//! `{name=*}`). `**` matches the rest of the path and must come last.

use std::fmt;

/// One segment of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A literal segment, matched exactly.
    Literal(String),
    /// `*`: exactly one segment.
    Any,
    /// `**`: every remaining segment (zero or more).
    Rest,
}

/// A variable: the request field it sets and the segments it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The dotted field path, as written in the template (`topic`, `a.b`).
    pub field: String,
    /// Index of the first segment the variable covers.
    pub start: usize,
    /// Index one past the last segment it covers.
    pub end: usize,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The segments, variables expanded into the patterns they match.
    pub segments: Vec<Segment>,
    /// The custom verb (`fetch` in `.../{consumer}:fetch`), if any.
    pub verb: Option<String>,
    /// The variables, in order.
    pub variables: Vec<Variable>,
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The template.
    pub template: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path template {:?}: {}", self.template, self.reason)
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    /// Parses `template`.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let fail = |reason: String| TemplateError {
            template: template.to_owned(),
            reason,
        };
        let Some(rest) = template.strip_prefix('/') else {
            return Err(fail("must start with '/'".to_owned()));
        };
        let (path, verb) = split_verb(rest).map_err(&fail)?;
        let mut parsed = Self {
            segments: Vec::new(),
            verb: verb.map(str::to_owned),
            variables: Vec::new(),
        };
        for part in split_top_level(path).map_err(&fail)? {
            if let Some(inner) = part.strip_prefix('{') {
                let inner = inner.strip_suffix('}').ok_or_else(|| {
                    fail(format!("a variable must be a whole segment, not {part:?}"))
                })?;
                parsed.push_variable(inner).map_err(&fail)?;
            } else {
                parsed.segments.push(segment(part).map_err(&fail)?);
            }
        }
        parsed.check().map_err(fail)?;
        Ok(parsed)
    }

    fn push_variable(&mut self, inner: &str) -> Result<(), String> {
        let (field, pattern) = match inner.split_once('=') {
            Some((field, pattern)) => (field, pattern),
            None => (inner, "*"),
        };
        if field.is_empty()
            || !field
                .split('.')
                .all(|ident| is_ident(ident) && !ident.is_empty())
        {
            return Err(format!("{field:?} is not a field path"));
        }
        if self.variables.iter().any(|v| v.field == field) {
            return Err(format!("variable {field:?} appears twice"));
        }
        let start = self.segments.len();
        for part in pattern.split('/') {
            if part.contains('{') || part.contains('}') {
                return Err(format!("variables cannot nest (in {{{inner}}})"));
            }
            self.segments.push(segment(part)?);
        }
        self.variables.push(Variable {
            field: field.to_owned(),
            start,
            end: self.segments.len(),
        });
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        if let Some(position) = self.segments.iter().position(|s| *s == Segment::Rest)
            && position + 1 != self.segments.len()
        {
            return Err("`**` must be the last segment".to_owned());
        }
        Ok(())
    }

    /// The number of literal segments: the more, the more specific.
    pub fn literals(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    /// The axum route that matches every path this template matches: one
    /// capture (`{p0}`, `{p1}`, ...) per wildcard segment, a catch-all for
    /// `**`, and the verb kept in a literal last segment. A verb after a
    /// wildcard cannot be told apart by the router (it shares the segment),
    /// so the generated handler matches the full template again.
    pub fn axum_route(&self) -> String {
        let mut route = String::new();
        for (i, segment) in self.segments.iter().enumerate() {
            route.push('/');
            match segment {
                Segment::Literal(literal) => route.push_str(literal),
                Segment::Any => route.push_str(&format!("{{p{i}}}")),
                Segment::Rest => route.push_str(&format!("{{*p{i}}}")),
            }
        }
        if let Some(verb) = &self.verb
            && matches!(self.segments.last(), Some(Segment::Literal(_)) | None)
        {
            route.push(':');
            route.push_str(verb);
        }
        if route.is_empty() {
            route.push('/');
        }
        route
    }

    /// The OpenAPI parameter name of each wildcard segment a variable
    /// covers: the field's name for a variable with one wildcard (`{name}`,
    /// `{name=topics/*}`; the last part of a nested field's path), `field_1`,
    /// `field_2`, ... for one with several.
    /// Literal segments inside a variable stay literal in the OpenAPI path,
    /// so `/v1/{name=items/*}` and `/v1/{name=parts/*}` stay distinct paths.
    pub fn openapi_parameters(&self) -> Vec<(usize, String)> {
        let mut parameters = Vec::new();
        for variable in &self.variables {
            let wildcards: Vec<usize> = (variable.start..variable.end)
                .filter(|&i| !matches!(self.segments[i], Segment::Literal(_)))
                .collect();
            // A nested field is named by its last part (`{topic.name}` is
            // `{name}`), as AIP-134 update paths sit beside their resource's
            // `{name}` paths and OpenAPI treats such paths as one; the whole
            // path stays when that would make two names the same.
            let last = variable.field.rsplit('.').next().unwrap_or(&variable.field);
            let clash = self
                .variables
                .iter()
                .filter(|v| v.field.rsplit('.').next() == Some(last))
                .count()
                > 1;
            let base = if clash { variable.field.as_str() } else { last };
            for (n, &i) in wildcards.iter().enumerate() {
                let name = if wildcards.len() == 1 {
                    base.to_owned()
                } else {
                    format!("{base}_{}", n + 1)
                };
                parameters.push((i, name));
            }
        }
        parameters
    }

    /// The template as an OpenAPI path: each wildcard of a variable as a
    /// parameter ([`Self::openapi_parameters`]), literals as they are.
    pub fn openapi_path(&self) -> String {
        let parameters = self.openapi_parameters();
        let mut path = String::new();
        for (i, segment) in self.segments.iter().enumerate() {
            path.push('/');
            if let Some((_, name)) = parameters.iter().find(|(at, _)| *at == i) {
                path.push_str(&format!("{{{name}}}"));
                continue;
            }
            match segment {
                Segment::Literal(literal) => path.push_str(literal),
                Segment::Any => path.push('*'),
                Segment::Rest => path.push_str("**"),
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        if let Some(verb) = &self.verb {
            path.push(':');
            path.push_str(verb);
        }
        path
    }
}

/// Splits off the verb: a `:` after the last `/` and outside any variable.
fn split_verb(path: &str) -> Result<(&str, Option<&str>), String> {
    let mut depth = 0usize;
    let mut colon = None;
    for (i, c) in path.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => colon = None,
            ':' if depth == 0 => colon = Some(i),
            _ => {}
        }
    }
    match colon {
        Some(i) => {
            let verb = &path[i + 1..];
            if verb.is_empty() || !verb.chars().all(is_literal_char) {
                return Err(format!("{verb:?} is not a valid verb"));
            }
            Ok((&path[..i], Some(verb)))
        }
        None => Ok((path, None)),
    }
}

/// Splits on `/` outside braces.
fn split_top_level(path: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in path.char_indices() {
        match c {
            '{' if depth == 0 => depth = 1,
            '{' => return Err("variables cannot nest".to_owned()),
            '}' if depth == 1 => depth = 0,
            '}' => return Err("unbalanced '}'".to_owned()),
            '/' if depth == 0 => {
                parts.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unterminated variable".to_owned());
    }
    parts.push(&path[start..]);
    Ok(parts)
}

fn segment(part: &str) -> Result<Segment, String> {
    match part {
        "*" => Ok(Segment::Any),
        "**" => Ok(Segment::Rest),
        "" => Err("empty segment".to_owned()),
        literal if literal.chars().all(is_literal_char) => Ok(Segment::Literal(literal.to_owned())),
        other => Err(format!("{other:?} is not a valid literal segment")),
    }
}

/// Characters a literal may hold: RFC 3986 unreserved characters and the
/// sub-delimiters that need no escaping in a path, but not the template's
/// own `* { } = : /`.
fn is_literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()+,;@%".contains(c)
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
