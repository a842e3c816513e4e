//! [`Broker`](super::client::Broker) over grpc-web: the generated tonic
//! clients through `tonic_web::GrpcWebClientLayer`, carried over HTTP/1.1 by
//! reqwest (built without HTTP/2), as a browser would reach the gRPC
//! listener.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use futures_util::{StreamExt as _, TryStreamExt as _};
use tonic::{body::Body, codegen::Service};
use tonic_web::{GrpcWebCall, GrpcWebClientLayer, GrpcWebClientService};
use tower::Layer as _;

use super::grpc::{GrpcBroker, Wire};

/// gRPC-web over HTTP/1.1.
pub type GrpcWeb = GrpcBroker<GrpcWebClientService<Http1>>;

/// An HTTP/1.1 client as a tower service: the connection under the
/// grpc-web layer.
#[derive(Clone)]
pub struct Http1 {
    client: reqwest::Client,
}

impl Service<http::Request<GrpcWebCall<Body>>> for Http1 {
    type Response = http::Response<reqwest::Body>;
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<GrpcWebCall<Body>>) -> Self::Future {
        // The request body as a stream of its data frames.
        let request = request.map(|body| {
            reqwest::Body::wrap_stream(
                body.try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
                    .boxed(),
            )
        });
        let client = self.client.clone();
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            assert_eq!(request.version(), http::Version::HTTP_11);
            let response = client.execute(request).await?;
            assert_eq!(
                response.version(),
                http::Version::HTTP_11,
                "grpc-web is answered over HTTP/1.1"
            );
            Ok(http::Response::from(response))
        })
    }
}

impl Wire for GrpcWebClientService<Http1> {
    async fn open(_url: &str) -> Self {
        // reqwest connects on the first request, on a pool of its own.
        GrpcWebClientLayer::new().layer(Http1 {
            client: reqwest::Client::new(),
        })
    }
}
