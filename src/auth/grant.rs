//! Roles, the actions they allow, and grants (a role on a topic pattern).

use std::{fmt, str::FromStr};

use super::pattern::TopicPattern;

/// What a token may do, on the topics its pattern matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything on the matching topics, plus GetBroker and topic
    /// create/update/delete.
    Admin,
    /// Publish, and look at topics.
    Produce,
    /// Consumers (create, update, delete), reads, commits and settles
    /// (Ack, Nack, Reject, ExtendLease), and look at topics.
    Consume,
}

impl Role {
    /// Whether the role allows `action` (on a topic its pattern matches).
    pub fn allows(self, action: Action) -> bool {
        use Action as A;
        match self {
            Self::Admin => true,
            Self::Produce => matches!(
                action,
                A::Publish | A::InitProducer | A::GetTopic | A::ListTopics
            ),
            Self::Consume => matches!(
                action,
                A::GetTopic
                    | A::ListTopics
                    | A::CreateConsumer
                    | A::GetConsumer
                    | A::ListConsumers
                    | A::DeleteConsumer
                    | A::UpdateConsumer
                    | A::Fetch
                    | A::Commit
                    | A::Ack
                    | A::Nack
                    | A::Reject
                    | A::ExtendLease
                    | A::Seek
                    | A::Subscribe
            ),
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "produce" => Ok(Self::Produce),
            "consume" => Ok(Self::Consume),
            other => Err(format!(
                "unknown role {other:?}; expected admin, produce or consume"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Admin => "admin",
            Self::Produce => "produce",
            Self::Consume => "consume",
        })
    }
}

/// What a request does, for the grant check. The legacy `gostream` RPCs
/// map onto these (GetOffset is GetConsumer, GetConsumers is
/// ListConsumers, GetTopics is ListTopics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Action {
    CreateTopic,
    GetTopic,
    UpdateTopic,
    ListTopics,
    DeleteTopic,
    GetBroker,
    Publish,
    /// Assigns an idempotent producer id (InitProducer): allowed with
    /// Publish, on any topic pattern.
    InitProducer,
    CreateConsumer,
    GetConsumer,
    ListConsumers,
    DeleteConsumer,
    /// Changes a consumer's settings: allowed with CreateConsumer.
    UpdateConsumer,
    Fetch,
    Commit,
    /// Ack, Nack, Reject and ExtendLease settle what a reader was given:
    /// allowed with Fetch and Commit.
    Ack,
    Nack,
    Reject,
    ExtendLease,
    Seek,
    Subscribe,
    /// `GET /metrics`.
    ReadMetrics,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One grant of a token: a role on the topics a pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// The topics it applies to.
    pub topics: TopicPattern,
}

impl Grant {
    /// Whether the grant allows `action` on `topic`.
    pub fn allows(&self, action: Action, topic: &str) -> bool {
        self.role.allows(action) && self.topics.matches(topic)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.role, self.topics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grant table of the configuration document (`docs/configuration.md`), row by row.
    #[test]
    fn each_role_allows_its_actions() {
        use Action as A;
        let all = [
            A::CreateTopic,
            A::GetTopic,
            A::UpdateTopic,
            A::ListTopics,
            A::DeleteTopic,
            A::GetBroker,
            A::Publish,
            A::InitProducer,
            A::CreateConsumer,
            A::GetConsumer,
            A::ListConsumers,
            A::DeleteConsumer,
            A::UpdateConsumer,
            A::Fetch,
            A::Commit,
            A::Ack,
            A::Nack,
            A::Reject,
            A::ExtendLease,
            A::Seek,
            A::Subscribe,
            A::ReadMetrics,
        ];
        let allowed = |role: Role| -> Vec<Action> {
            all.iter().copied().filter(|a| role.allows(*a)).collect()
        };
        assert_eq!(allowed(Role::Admin), all);
        assert_eq!(
            allowed(Role::Produce),
            [A::GetTopic, A::ListTopics, A::Publish, A::InitProducer]
        );
        assert_eq!(
            allowed(Role::Consume),
            [
                A::GetTopic,
                A::ListTopics,
                A::CreateConsumer,
                A::GetConsumer,
                A::ListConsumers,
                A::DeleteConsumer,
                A::UpdateConsumer,
                A::Fetch,
                A::Commit,
                A::Ack,
                A::Nack,
                A::Reject,
                A::ExtendLease,
                A::Seek,
                A::Subscribe,
            ]
        );
    }

    #[test]
    fn a_grant_needs_the_role_and_the_topic() {
        let grant = Grant {
            role: Role::Produce,
            topics: TopicPattern::parse("orders.*").unwrap(),
        };
        assert!(grant.allows(Action::Publish, "orders.eu"));
        assert!(!grant.allows(Action::Publish, "billing"));
        assert!(!grant.allows(Action::Fetch, "orders.eu"));
        assert_eq!(grant.to_string(), "produce orders.*");
    }
}
