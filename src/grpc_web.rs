//! Which gRPC calls arrived as grpc-web. tonic's `GrpcWebLayer` rewrites a
//! grpc-web request into plain gRPC, so [`mark_grpc_web`], placed outside
//! it, marks such requests first; the metrics count them under their own
//! transport and the service refuses what browsers cannot do (a
//! PublishStream). A leaf module, so both can use it.

use http::{Request, header};

/// Marks a request that arrived as grpc-web.
#[derive(Debug, Clone, Copy)]
struct GrpcWeb;

/// Marks `request` as grpc-web if its content type says so. Use it (in a
/// `tower::util::MapRequestLayer`) outside tonic's `GrpcWebLayer`, which
/// rewrites the content type to plain gRPC.
pub fn mark_grpc_web<B>(mut request: Request<B>) -> Request<B> {
    let grpc_web = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc-web"));
    if grpc_web {
        request.extensions_mut().insert(GrpcWeb);
    }
    request
}

/// Whether the HTTP request with these `extensions` arrived as grpc-web
/// (marked by [`mark_grpc_web`]).
pub fn is_grpc_web(extensions: &http::Extensions) -> bool {
    extensions.get::<GrpcWeb>().is_some()
}

/// Whether a tonic call arrived as grpc-web (marked by [`mark_grpc_web`]).
pub fn is_grpc_web_call<T>(request: &tonic::Request<T>) -> bool {
    request.extensions().get::<GrpcWeb>().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_grpc_web_content_types_are_marked() {
        let marked = mark_grpc_web(
            Request::builder()
                .header(header::CONTENT_TYPE, "application/grpc-web-text+proto")
                .body(())
                .expect("a request"),
        );
        assert!(is_grpc_web(marked.extensions()));
        let plain = mark_grpc_web(
            Request::builder()
                .header(header::CONTENT_TYPE, "application/grpc")
                .body(())
                .expect("a request"),
        );
        assert!(!is_grpc_web(plain.extensions()));
    }
}
