//! InitProducer's grant: any token whose role may publish (produce or
//! admin, on any topic pattern), over gRPC and REST; a consume-only token
//! is refused, and no token is unauthenticated.

use gostream::pb::gostream::v1::InitProducerRequest;
use tonic::Code;

use super::{config, with_token};
use crate::common::{TestServer, within};

#[tokio::test]
async fn init_producer_needs_a_token_that_may_publish() {
    let server = TestServer::start_with(config()).await;
    let publisher = server.publisher().await;
    let http = reqwest::Client::new();
    for (token, expected, status) in [
        (Some("producer"), Code::Ok, 200),
        (Some("ops"), Code::Ok, 200),
        (Some("consumer"), Code::PermissionDenied, 403),
        (None, Code::Unauthenticated, 401),
    ] {
        let answer = within(
            "InitProducer",
            publisher
                .clone()
                .init_producer(with_token(InitProducerRequest {}, token)),
        )
        .await;
        let code = answer.as_ref().map_or_else(|s| s.code(), |_| Code::Ok);
        assert_eq!(code, expected, "{token:?}: {answer:?}");
        if let Ok(answer) = answer {
            assert!(!answer.into_inner().producer_id.is_empty());
        }

        let mut request = http
            .post(server.rest("/v1/producers"))
            .json(&serde_json::json!({}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let reply = within("POST /v1/producers", request.send())
            .await
            .expect("a REST answer");
        assert_eq!(reply.status().as_u16(), status, "{token:?}");
    }
    server.stop().await;
}
