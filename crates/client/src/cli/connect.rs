//! The connection to the broker: `--server` (http:// or https://, with
//! `--ca-cert` as the trust root), and the `authorization: Bearer` metadata
//! that `--token` adds to every call.

use std::time::Duration;

use tonic::{
    Request, Status,
    metadata::{AsciiMetadataValue, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

use super::{Client, Failure};
use gostream_api::gostream::v1::{
    broker_service_client::BrokerServiceClient, consumer_service_client::ConsumerServiceClient,
    publisher_service_client::PublisherServiceClient, topic_service_client::TopicServiceClient,
};

/// How long connecting may take before the command gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// While a call is open, how often the connection is checked with an
/// HTTP/2 PING, so a connection that died silently (no reset, no close) is
/// noticed: a stream publishing from stdin then reconnects.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// How long a PING may go unanswered before the connection counts as lost.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The channel every client uses: the connection plus the token.
pub type Transport = InterceptedService<Channel, BearerToken>;

/// Checks a `--server` value: an http:// or https:// URL with a host.
pub fn parse_server(value: &str) -> Result<String, String> {
    let uri: http::Uri = value
        .parse()
        .map_err(|e| format!("not a URL ({e}); expected http://HOST:PORT or https://HOST:PORT"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(
                "expected a URL starting with http:// or https://, such as http://127.0.0.1:9090"
                    .to_owned(),
            );
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host; expected http://HOST:PORT".to_owned());
    }
    Ok(value.to_owned())
}

/// Adds `authorization: Bearer <token>` to every request, when a token is
/// set.
#[derive(Debug, Clone)]
pub struct BearerToken(Option<AsciiMetadataValue>);

impl BearerToken {
    /// The interceptor for `token`; fails if the token cannot be a header
    /// value (control characters, non-ASCII).
    pub fn new(token: Option<&str>) -> Result<Self, Failure> {
        let value = token
            .map(|token| {
                let mut value: AsciiMetadataValue =
                    MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
                        Failure::Usage("--token may hold only visible ASCII characters".to_owned())
                    })?;
                value.set_sensitive(true);
                Ok::<_, Failure>(value)
            })
            .transpose()?;
        Ok(Self(value))
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A client of every service, over one connection.
#[derive(Debug, Clone)]
pub struct Clients {
    /// TopicService.
    pub topics: TopicServiceClient<Transport>,
    /// ConsumerService.
    pub consumers: ConsumerServiceClient<Transport>,
    /// PublisherService.
    pub publisher: PublisherServiceClient<Transport>,
    /// BrokerService.
    pub broker: BrokerServiceClient<Transport>,
}

impl Clients {
    /// Connects to the broker `client` names.
    pub async fn connect(client: &Client) -> Result<Self, Failure> {
        let token = BearerToken::new(client.token.as_deref())?;
        let endpoint = endpoint(client)?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| Failure::Connect {
                server: client.server.clone(),
                source,
            })?;
        let transport = InterceptedService::new(channel, token);
        // A message may be as large as the broker allows, and a batch of
        // them larger still: the broker's own limits bound what comes back.
        Ok(Self {
            topics: TopicServiceClient::new(transport.clone()),
            consumers: ConsumerServiceClient::new(transport.clone())
                .max_decoding_message_size(usize::MAX),
            publisher: PublisherServiceClient::new(transport.clone()),
            broker: BrokerServiceClient::new(transport),
        })
    }
}

/// The endpoint of `--server`, with TLS for https://.
fn endpoint(client: &Client) -> Result<Endpoint, Failure> {
    let endpoint = Endpoint::from_shared(client.server.clone())
        .map_err(|e| Failure::Usage(format!("invalid --server {}: {e}", client.server)))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT);
    if !client.server.starts_with("https://") {
        return Ok(endpoint);
    }
    let Some(path) = &client.ca_cert else {
        return Err(Failure::Setup(format!(
            "{} is https: give --ca-cert PATH, the PEM certificate of the authority to trust (system roots are not loaded)",
            client.server
        )));
    };
    let pem = std::fs::read(path)
        .map_err(|e| Failure::Setup(format!("cannot read --ca-cert {}: {e}", path.display())))?;
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
    endpoint
        .tls_config(tls)
        .map_err(|e| Failure::Setup(format!("cannot use --ca-cert {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_http_or_https_with_a_host() {
        assert!(parse_server("http://127.0.0.1:9090").is_ok());
        assert!(parse_server("https://broker.example:443").is_ok());
        for bad in ["127.0.0.1:9090", "ftp://host:1", "http://", "not a url"] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_token_is_sent_as_a_bearer_header() {
        let mut with = BearerToken::new(Some("s3cret")).expect("a valid token");
        let request = with.call(Request::new(())).expect("intercepted");
        assert_eq!(
            request.metadata().get("authorization").expect("set"),
            "Bearer s3cret"
        );
        let mut without = BearerToken::new(None).expect("no token");
        let request = without.call(Request::new(())).expect("intercepted");
        assert!(request.metadata().get("authorization").is_none());
        assert!(BearerToken::new(Some("line\nbreak")).is_err());
    }
}
