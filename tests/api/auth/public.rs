//! With auth on, health, reflection, `/healthz` and `/openapi.json` stay
//! reachable without a token, unless left out of `--auth-public`.

use gostream::{auth::Public, config::Config};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest,
};

use super::{config, with_token};
use crate::common::{TestServer, expect_code, within};

async fn health(server: &TestServer, token: Option<&str>) -> Result<(), tonic::Status> {
    HealthClient::new(server.channel().await)
        .check(with_token(HealthCheckRequest::default(), token))
        .await
        .map(drop)
}

async fn reflection(server: &TestServer, token: Option<&str>) -> Result<(), tonic::Status> {
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(server.channel().await)
        .server_reflection_info(with_token(tokio_stream::iter([list]), token))
        .await?
        .into_inner();
    answers.message().await?.expect("a reflection answer");
    Ok(())
}

async fn get(server: &TestServer, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(server.rest(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("an answer")
}

#[tokio::test]
async fn health_reflection_and_openapi_are_public_by_default() {
    let server = TestServer::start_with(config()).await;
    health(&server, None).await.expect("health without a token");
    reflection(&server, None)
        .await
        .expect("reflection without a token");
    assert_eq!(get(&server, "/healthz", None).await.status(), 200);
    assert_eq!(get(&server, "/openapi.json", None).await.status(), 200);
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn what_is_not_public_needs_a_token() {
    let server = TestServer::start_with(Config {
        auth_public: "none".parse::<Public>().expect("a list"),
        ..config()
    })
    .await;
    expect_code(health(&server, None).await, Code::Unauthenticated);
    expect_code(health(&server, Some("nope")).await, Code::Unauthenticated);
    expect_code(reflection(&server, None).await, Code::Unauthenticated);
    // Any valid token will do: these are not topic operations.
    health(&server, Some("consumer"))
        .await
        .expect("health with a token");
    reflection(&server, Some("producer"))
        .await
        .expect("reflection with a token");
    for path in ["/healthz", "/openapi.json"] {
        let refused = get(&server, path, None).await;
        assert_eq!(refused.status(), 401, "{path}");
        assert_eq!(refused.headers()["www-authenticate"], "Bearer", "{path}");
        let body: serde_json::Value = refused.json().await.expect("a JSON error");
        assert_eq!(body["details"][0]["reason"], "UNAUTHENTICATED", "{path}");
        assert_eq!(
            get(&server, path, Some("consumer")).await.status(),
            200,
            "{path}"
        );
    }
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn public_can_be_chosen_item_by_item() {
    let server = TestServer::start_with(Config {
        auth_public: "health".parse::<Public>().expect("a list"),
        ..config()
    })
    .await;
    health(&server, None).await.expect("health stays public");
    assert_eq!(get(&server, "/healthz", None).await.status(), 200);
    expect_code(reflection(&server, None).await, Code::Unauthenticated);
    assert_eq!(get(&server, "/openapi.json", None).await.status(), 401);
    within("stop", server.stop()).await;
}
