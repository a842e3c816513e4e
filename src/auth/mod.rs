//! Authentication and authorisation: bearer tokens with grants.
//!
//! Off unless tokens are configured (`--auth-tokens-file`,
//! `--auth-tokens`). When on, every RPC needs `authorization: Bearer
//! <token>` (gRPC metadata, a grpc-web header or a REST header alike: the
//! REST gateway passes its headers to the same service methods as
//! metadata), and the token's grants must allow the RPC on its topic.
//!
//! # Layout
//! - [`pattern`]: topic patterns (`*`, `orders.*`, `orders`).
//! - [`grant`]: roles, the actions they allow, grants.
//! - [`tokens`]: token lines and the constant-time token table.
//! - [`listing`]: lists filtered to the caller's topics.
//! - [`http`]: the REST listener's guard of `/healthz`, `/openapi.json`
//!   and `/metrics`.
//!
//! The services call [`Auth::check`] (an action on a topic) or
//! [`Auth::authorize`] (an action on no one topic, e.g. ListTopics, whose
//! answer is then filtered with [`Caller::may`]) first thing in each method.
//! Tokens never appear in logs or error messages.

pub mod grant;
pub mod http;
pub mod listing;
pub mod pattern;
pub mod tokens;

use std::{fmt, path::Path, str::FromStr, sync::Arc};

use tonic::{Request, Status, metadata::MetadataMap};

pub use grant::{Action, Grant, Role};
pub use pattern::TopicPattern;
pub use tokens::{Tokens, TokensBuilder};

use crate::error::Error;

/// What a client must send, as error messages say it.
const SEND: &str = "send the header `authorization: Bearer <token>`";

/// The token table, or nothing when auth is off. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    tokens: Option<Arc<Tokens>>,
}

impl Auth {
    /// No authentication: every request may do anything.
    pub fn off() -> Self {
        Self::default()
    }

    /// Authentication with `tokens`.
    pub fn new(tokens: Tokens) -> Self {
        Self {
            tokens: Some(Arc::new(tokens)),
        }
    }

    /// The tokens of `file` (`--auth-tokens-file`) and `lines`
    /// (`--auth-tokens`), merged; off when neither is set. The error names
    /// the file (or flag) and line.
    pub fn from_sources(file: Option<&Path>, lines: Option<&TokenLines>) -> Result<Self, String> {
        let mut builder = TokensBuilder::default();
        if let Some(path) = file {
            builder.add_file(path)?;
        }
        if let Some(lines) = lines {
            builder.add_inline("--auth-tokens", lines.expose())?;
        }
        let configured = file.is_some() || lines.is_some();
        if configured && builder.is_empty() {
            return Err(
                "--auth-tokens-file / --auth-tokens hold no token: every request would be refused"
                    .to_owned(),
            );
        }
        Ok(if configured {
            Self::new(builder.build())
        } else {
            Self::off()
        })
    }

    /// Whether requests need a token.
    pub fn is_on(&self) -> bool {
        self.tokens.is_some()
    }

    /// Who sent a request with `metadata`: UNAUTHENTICATED without a known
    /// bearer token (when auth is on).
    pub fn caller(&self, metadata: &MetadataMap) -> Result<Caller, Error> {
        let Some(tokens) = &self.tokens else {
            return Ok(Caller { grants: None });
        };
        let Some(header) = metadata.get("authorization") else {
            return Err(Error::Unauthenticated(format!(
                "a token is required: {SEND}"
            )));
        };
        let token = bearer(header.as_bytes()).ok_or_else(|| {
            Error::Unauthenticated(format!(
                "the authorization header is not a bearer token: {SEND}"
            ))
        })?;
        match tokens.lookup(token) {
            Some(grants) => Ok(Caller {
                grants: Some(grants),
            }),
            None => Err(Error::Unauthenticated(format!(
                "the token is not valid: {SEND} with a token the broker knows"
            ))),
        }
    }

    /// The caller of `request`, allowed `action` on `topic`: else
    /// UNAUTHENTICATED or PERMISSION_DENIED.
    pub fn check<T>(
        &self,
        request: &Request<T>,
        action: Action,
        topic: &str,
    ) -> Result<Caller, Error> {
        let caller = self.caller(request.metadata())?;
        caller.require(action, topic)?;
        Ok(caller)
    }

    /// The caller of `request`, allowed `action` on at least one topic
    /// pattern (an action not on one topic: GetBroker, ListTopics).
    pub fn authorize<T>(&self, request: &Request<T>, action: Action) -> Result<Caller, Error> {
        let caller = self.caller(request.metadata())?;
        caller.require_role(action)?;
        Ok(caller)
    }

    /// A gRPC interceptor for services outside the grants (health,
    /// reflection): any valid token, unless `public`.
    pub fn require_token(&self, public: bool) -> RequireToken {
        RequireToken {
            auth: if public { Self::off() } else { self.clone() },
        }
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive).
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = header.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = token.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// An authenticated caller (or anyone, when auth is off).
#[derive(Debug, Clone)]
pub struct Caller {
    /// `None`: auth is off.
    grants: Option<Arc<[Grant]>>,
}

impl Caller {
    /// Whether the caller may do `action` on `topic`.
    pub fn may(&self, action: Action, topic: &str) -> bool {
        self.grants
            .as_ref()
            .is_none_or(|grants| grants.iter().any(|g| g.allows(action, topic)))
    }

    /// Whether the caller may do `action` on every topic (so a list needs
    /// no filtering).
    pub fn may_everywhere(&self, action: Action) -> bool {
        self.grants.as_ref().is_none_or(|grants| {
            grants
                .iter()
                .any(|g| g.role.allows(action) && g.topics.is_everything())
        })
    }

    /// PERMISSION_DENIED unless the caller has a role that allows `action`
    /// (on any topic pattern).
    pub fn require_role(&self, action: Action) -> Result<(), Error> {
        match &self.grants {
            Some(grants) if !grants.iter().any(|g| g.role.allows(action)) => {
                Err(self.denied(action, None))
            }
            _ => Ok(()),
        }
    }

    /// PERMISSION_DENIED unless the caller may do `action` on `topic`.
    pub fn require(&self, action: Action, topic: &str) -> Result<(), Error> {
        if self.may(action, topic) {
            Ok(())
        } else {
            Err(self.denied(action, Some(topic)))
        }
    }

    fn denied(&self, action: Action, topic: Option<&str>) -> Error {
        let grants = self
            .grants
            .iter()
            .flat_map(|g| g.iter())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let what = match topic {
            Some(topic) => format!("{action} on topic {topic:?}"),
            None => action.to_string(),
        };
        Error::PermissionDenied(format!("the token may not {what}; its grants: {grants}"))
    }
}

/// The gRPC interceptor of [`Auth::require_token`].
#[derive(Debug, Clone)]
pub struct RequireToken {
    auth: Auth,
}

impl tonic::service::Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.auth.caller(request.metadata())?;
        Ok(request)
    }
}

/// What stays reachable without a token when auth is on
/// (`--auth-public`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Public {
    /// `grpc.health.v1` and `GET /healthz`.
    pub health: bool,
    /// gRPC reflection.
    pub reflection: bool,
    /// `GET /openapi.json`.
    pub openapi: bool,
    /// `GET /metrics` (else it needs an admin token).
    pub metrics: bool,
}

impl Default for Public {
    fn default() -> Self {
        Self {
            health: true,
            reflection: true,
            openapi: true,
            metrics: false,
        }
    }
}

impl FromStr for Public {
    type Err = String;

    /// A comma-separated list of `health`, `reflection`, `openapi`,
    /// `metrics`; empty or `none` for nothing.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut public = Self {
            health: false,
            reflection: false,
            openapi: false,
            metrics: false,
        };
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "health" => public.health = true,
                "reflection" => public.reflection = true,
                "openapi" => public.openapi = true,
                "metrics" => public.metrics = true,
                "none" => {}
                other => {
                    return Err(format!(
                        "unknown {other:?}; expected a comma-separated list of health, reflection, openapi, metrics (or none)"
                    ));
                }
            }
        }
        Ok(public)
    }
}

impl fmt::Display for Public {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<&str> = [
            (self.health, "health"),
            (self.reflection, "reflection"),
            (self.openapi, "openapi"),
            (self.metrics, "metrics"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if items.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&items.join(","))
        }
    }
}

/// Token lines given on the command line or in the environment: kept out
/// of `Debug` output, so a logged configuration shows no token.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenLines(String);

impl TokenLines {
    /// The lines.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for TokenLines {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for TokenLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenLines(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::{tokens::grant, *};

    fn auth(lines: &str) -> Auth {
        let mut builder = TokensBuilder::default();
        builder.add_inline("test", lines).unwrap();
        Auth::new(builder.build())
    }

    fn request(authorization: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        request
    }

    #[test]
    fn off_allows_everything() {
        let caller = Auth::off()
            .check(&request(None), Action::DeleteTopic, "t")
            .unwrap();
        assert!(caller.may_everywhere(Action::ListTopics));
    }

    #[test]
    fn a_missing_or_unknown_token_is_unauthenticated_and_says_what_to_send() {
        let auth = auth("s3cret admin *");
        for header in [
            None,
            Some("Bearer nope"),
            Some("Basic s3cret"),
            Some("Bearer "),
        ] {
            let error = auth
                .check(&request(header), Action::GetTopic, "t")
                .unwrap_err();
            assert_eq!(error.code(), tonic::Code::Unauthenticated, "{header:?}");
            assert!(error.to_string().contains("authorization: Bearer <token>"));
            assert!(!error.to_string().contains("s3cret"));
        }
        assert!(
            auth.check(&request(Some("bearer s3cret")), Action::GetTopic, "t")
                .is_ok()
        );
    }

    #[test]
    fn permission_denied_names_the_action_topic_and_grants() {
        let auth = auth("p produce orders.*; p consume audit");
        let error = auth
            .check(&request(Some("Bearer p")), Action::Fetch, "orders.eu")
            .unwrap_err();
        assert_eq!(error.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            error.to_string(),
            "the token may not Fetch on topic \"orders.eu\"; its grants: produce orders.*, consume audit"
        );
        let error = auth
            .authorize(&request(Some("Bearer p")), Action::GetBroker)
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the token may not GetBroker;")
        );
        let caller = auth
            .authorize(&request(Some("Bearer p")), Action::ListTopics)
            .unwrap();
        assert!(caller.may(Action::ListTopics, "orders.eu"));
        assert!(caller.may(Action::ListTopics, "audit"));
        assert!(!caller.may(Action::ListTopics, "billing"));
        assert!(!caller.may_everywhere(Action::ListTopics));
    }

    #[test]
    fn public_lists_parse() {
        assert_eq!(
            "health,reflection,openapi".parse::<Public>().unwrap(),
            Public::default()
        );
        let none: Public = "".parse().unwrap();
        assert!(!none.health && !none.reflection && !none.openapi && !none.metrics);
        assert_eq!("none".parse::<Public>().unwrap(), none);
        assert!("metrics, health".parse::<Public>().unwrap().metrics);
        assert!("healthz".parse::<Public>().unwrap_err().contains("healthz"));
        assert_eq!(Public::default().to_string(), "health,reflection,openapi");
    }

    #[test]
    fn token_lines_are_redacted_in_debug() {
        let lines: TokenLines = "s3cret admin *".parse().unwrap();
        assert!(!format!("{lines:?}").contains("s3cret"));
        let _ = grant(Role::Admin, "*");
    }
}
