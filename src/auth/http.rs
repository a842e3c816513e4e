//! The REST listener's guard of the routes outside the services: `/healthz`
//! and `/openapi.json` need a valid token unless public, `/metrics` an admin
//! token unless public. The routes of the services check in the service
//! methods themselves. Every 401 answer gets `WWW-Authenticate: Bearer`.

use axum::{
    Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse as _, Response},
};
use http::{HeaderValue, Method, StatusCode, header};
use tonic::metadata::MetadataMap;

use super::{Action, Auth, Public};
use crate::error::{ApiError, Error};

#[derive(Clone)]
struct Guard {
    auth: Auth,
    public: Public,
}

/// `router` with the guard around every route (add `/metrics` before
/// calling this, so it is guarded too).
pub fn guard(router: Router, auth: Auth, public: Public) -> Router {
    if !auth.is_on() {
        return router;
    }
    router.layer(middleware::from_fn_with_state(
        Guard { auth, public },
        check,
    ))
}

async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if let Err(error) = admit(&guard, &request) {
        return with_challenge(ApiError::from(error.to_status()).into_response());
    }
    with_challenge(next.run(request).await)
}

/// What a request for one of the guarded routes needs.
fn admit(guard: &Guard, request: &Request) -> Result<(), Error> {
    if request.method() == Method::OPTIONS {
        return Ok(());
    }
    let public = &guard.public;
    let needs = match request.uri().path() {
        "/healthz" if !public.health => None,
        "/openapi.json" if !public.openapi => None,
        "/metrics" if !public.metrics => Some(Action::ReadMetrics),
        _ => return Ok(()),
    };
    let metadata = MetadataMap::from_headers(request.headers().clone());
    let caller = guard.auth.caller(&metadata)?;
    match needs {
        Some(action) => caller.require_role(action),
        None => Ok(()),
    }
}

fn with_challenge(mut response: Response) -> Response {
    if response.status() == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}
