//! The REST listener's own routes: `/healthz`, `/openapi.json`, and CORS for
//! pages in a browser.

use reqwest::Method;
use serde_json::json;

use super::support::{Rest, read_reply};
use crate::common::{TestServer, within};

/// The origin of the browser page in the CORS tests.
const ORIGIN: &str = "http://console.example";

/// Every route of both protos: (method, OpenAPI path template).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/topics"),
    ("get", "/v1/topics"),
    ("get", "/v1/topics/{name}"),
    ("delete", "/v1/topics/{name}"),
    ("post", "/v1/topics/{topic}/messages"),
    ("post", "/v1/topics/{topic}:publish"),
    ("post", "/v1/topics/{topic}/consumers"),
    ("get", "/v1/topics/{topic}/consumers"),
    ("get", "/v1/topics/{topic}/consumers/{consumer}"),
    ("delete", "/v1/topics/{topic}/consumers/{consumer}"),
    ("post", "/v1/topics/{topic}/consumers/{consumer}:fetch"),
    ("get", "/v1/topics/{topic}/consumers/{consumer}:fetch"),
    ("post", "/v1/topics/{topic}/consumers/{consumer}:commit"),
    ("post", "/v1/topics/{topic}/consumers/{consumer}:seek"),
    ("get", "/v1/topics/{topic}/consumers/{consumer}:subscribe"),
    ("get", "/v1/topics/{topic}:subscribe"),
    ("post", "/v1/produce/topic"),
    ("get", "/v1/produce/topic"),
    ("delete", "/v1/produce/topic"),
    ("post", "/v1/produce/message"),
    ("post", "/v1/produce/publish"),
    ("get", "/v1/produce/message"),
    ("post", "/v1/consume/consumer"),
    ("get", "/v1/consume/consumer"),
    ("get", "/v1/consume/offset"),
];

#[tokio::test]
async fn healthz_reports_serving() {
    let server = TestServer::start().await;
    let response = within("GET /healthz", reqwest::get(server.rest("/healthz")))
        .await
        .expect("GET /healthz");
    let health = read_reply(response).await.expect(200, "GET /healthz");
    assert_eq!(health, json!({ "status": "SERVING" }));
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn openapi_json_describes_every_route() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let doc = rest.get("/openapi.json", 200).await;

    let version = doc["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3."), "openapi {version:?}");
    assert!(
        doc["info"]["title"].is_string(),
        "info.title in {}",
        doc["info"]
    );
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut missing = Vec::new();
    for (method, path) in ROUTES {
        if paths.get(*path).and_then(|p| p.get(*method)).is_none() {
            missing.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}\npaths: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    within("stop", server.stop()).await;
}

#[tokio::test]
async fn a_cors_preflight_is_answered_and_calls_from_a_page_are_allowed() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);

    let preflight = rest
        .request(Method::OPTIONS, "/v1/topics")
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type");
    let reply = rest.send(preflight).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text());
    assert_eq!(reply.header("access-control-allow-origin"), Some(ORIGIN));
    let methods = reply
        .header("access-control-allow-methods")
        .unwrap_or_else(|| panic!("no allow-methods in {:?}", reply.headers))
        .to_ascii_uppercase();
    for method in ["GET", "POST", "DELETE"] {
        assert!(methods.contains(method), "allow-methods {methods:?}");
    }

    // The call itself, and an error the page must be able to read.
    let create = rest
        .request(Method::POST, "/v1/topics")
        .header("origin", ORIGIN)
        .json(&json!({ "name": "rest-cors" }));
    let reply = rest.send(create).await;
    assert_eq!(reply.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        reply.expect(200, "CreateTopic")["topic"]["name"],
        "rest-cors"
    );
    let missing = rest
        .request(Method::GET, "/v1/topics/rest-cors-missing")
        .header("origin", ORIGIN);
    let reply = rest.send(missing).await;
    assert_eq!(reply.header("access-control-allow-origin"), Some(ORIGIN));
    reply.error(404, 5);
    within("stop", server.stop()).await;
}
