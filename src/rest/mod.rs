//! The REST gateway: the documented HTTP endpoints, mapped onto the same
//! domain service as the gRPC surface, with an OpenAPI 3.1 document made
//! from the handlers themselves.

mod body;
mod caller;
mod email;
mod handlers;
mod origin;
mod passkeys;
mod password_reset;
mod passwordless;
mod second_factor;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::HandlerWithoutStateExt as _;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Uri};
use utoipa::OpenApi;
use utoipa::openapi::content::{Content, ContentBuilder};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, ResponseBuilder, Schema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Settings;
use crate::domain::Authenticator;
use crate::domain::Store;
use crate::http::MAX_BODY_BYTES;
use crate::http::client_address::ClientAddressResolver;
use crate::http::problem::Problem;

/// What the handlers share.
pub struct RestState<S> {
    auth: Arc<Authenticator<S>>,
    addresses: ClientAddressResolver,
    /// Name of the access token cookie.
    cookie_name: String,
    /// Name of the refresh token cookie.
    refresh_cookie_name: String,
    /// Other origins whose cookie-authenticated requests are accepted.
    allowed_origins: Vec<HeaderValue>,
    /// `Cache-Control` of the JWKS.
    jwks_cache_control: HeaderValue,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "authd REST gateway",
        description = "Register, log in, log out and verify access tokens. The same service is \
                       available over gRPC (auth.v1.AuthService) and grpc-web on the same port. \
                       Errors are RFC 9457 problem+json whose `reason` matches the gRPC \
                       ErrorInfo reason; every 400 names each bad field in `errors`. Beside \
                       what each operation lists, any request can be answered 404 for an \
                       unknown path and 405 (with `Allow`) for a method its path does not \
                       serve: see the NotFound and MethodNotAllowed responses."
    ),
    // Named here because `POST /token/refresh` refers to it by reference.
    components(schemas(handlers::RefreshBody, second_factor::StepUpBody)),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "second factors", description = "TOTP, recovery codes, and Logins that need them"),
        (name = "passkeys", description = "Registering passkeys (WebAuthn) and signing in with them"),
        (name = "email", description = "The account's email address, its verification by mail, and password reset by mail"),
        (name = "keys", description = "Public keys for verifying tokens locally")
    )
)]
struct ApiDoc;

/// The bearer token and the session cookie, as OpenAPI security schemes.
fn add_security_schemes(openapi: &mut utoipa::openapi::OpenApi, cookie_name: &str) {
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    components.add_security_scheme(
        "cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(cookie_name))),
    );
}

const PROBLEM_JSON: &str = "application/problem+json";

/// The answers no one operation owns, as reusable responses: an unknown
/// path (`not_found`) and a method its path does not serve
/// (`method_not_allowed`). OpenAPI has no place for them on an operation,
/// since they answer requests no operation describes.
fn add_shared_responses(openapi: &mut utoipa::openapi::OpenApi) {
    let problem = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build()
    };
    let components = openapi.components.get_or_insert_with(Default::default);
    components.responses.insert(
        "NotFound".to_owned(),
        RefOr::T(
            ResponseBuilder::new()
                .description("No resource at this path (reason NOT_FOUND)")
                .content(PROBLEM_JSON, problem())
                .build(),
        ),
    );
    components.responses.insert(
        "MethodNotAllowed".to_owned(),
        RefOr::T(
            ResponseBuilder::new()
                .description(
                    "The path exists, but not with this method (reason METHOD_NOT_ALLOWED)",
                )
                .content(PROBLEM_JSON, problem())
                .header(
                    "allow",
                    HeaderBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                        .description(Some("The methods the path serves"))
                        .build(),
                )
                .build(),
        ),
    );
}

/// A body type reads the fields it knows (`body::Fields`) and ignores the
/// others, so the document says so (`additionalProperties: true`) instead
/// of leaving it to each tool's default: a client may send more, never less.
fn allow_unknown_request_fields(openapi: &mut utoipa::openapi::OpenApi) {
    let names: Vec<String> = openapi
        .paths
        .paths
        .values()
        .flat_map(|item| {
            [&item.get, &item.put, &item.post, &item.delete, &item.patch]
                .into_iter()
                .flatten()
        })
        .filter_map(|operation| match &operation.request_body {
            Some(RefOr::T(body)) => Some(body),
            _ => None,
        })
        .flat_map(|body| body.content.values())
        .filter_map(|content| match content {
            RefOr::T(Content {
                schema: Some(RefOr::Ref(reference)),
                ..
            }) => reference
                .ref_location
                .strip_prefix("#/components/schemas/")
                .map(str::to_owned),
            _ => None,
        })
        .collect();
    let Some(components) = openapi.components.as_mut() else {
        return;
    };
    for name in names {
        if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(&name) {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(true)));
        }
    }
}

/// The REST routes and `also` (other documented HTTP routes: discovery and
/// introspection) with the OpenAPI document of all of them at
/// `/openapi.json`, and for unknown paths either the static files under
/// `--web-root` or a 404 problem.
pub fn router<S: Store>(
    auth: Arc<Authenticator<S>>,
    addresses: ClientAddressResolver,
    settings: &Settings,
    also: OpenApiRouter,
) -> Router {
    let jwks_cache_control = settings.jwks_cache_control();
    let (api_routes, mut openapi) = api_router()
        .with_state(Arc::new(RestState {
            auth,
            addresses,
            cookie_name: settings.cookie_name.clone(),
            refresh_cookie_name: settings.refresh_cookie_name.clone(),
            allowed_origins: settings.cors_allowed_origins.clone(),
            jwks_cache_control,
        }))
        .merge(also)
        .split_for_parts();
    add_security_schemes(&mut openapi, &settings.cookie_name);
    allow_unknown_request_fields(&mut openapi);
    add_shared_responses(&mut openapi);
    let openapi_json = document_json(&openapi);
    let router = api_routes
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route(
            "/openapi.json",
            get(move || async move { ([(CONTENT_TYPE, "application/json")], openapi_json) }),
        )
        .route("/metrics", get(prometheus_metrics))
        // Last, so that it reaches every route above.
        .method_not_allowed_fallback(method_not_allowed);
    match settings.web_root.as_deref() {
        Some(root) => router.fallback_service(
            crate::http::static_files::static_files(root)
                .not_found_service(not_found.into_service()),
        ),
        None => router.fallback(not_found),
    }
}

/// The OpenAPI document as served, with what utoipa's model cannot say.
fn document_json(openapi: &utoipa::openapi::OpenApi) -> String {
    let Ok(mut document) = serde_json::to_value(openapi) else {
        return String::new();
    };
    at_most_one_second_factor(&mut document);
    serde_json::to_string_pretty(&document).unwrap_or_default()
}

/// A body takes one of `totp_code`, `recovery_code` and
/// `passkey_credential_json`, never two (refused with 400 FIELD_CONFLICT):
/// JSON Schema's `not: {anyOf: [each pair required]}`, which utoipa's
/// schema model has no field for; where one is needed
/// (`CompleteLoginBody`), also `anyOf` requiring one.
fn at_most_one_second_factor(document: &mut serde_json::Value) {
    const FIELDS: [&str; 3] = ["totp_code", "recovery_code", "passkey_credential_json"];
    let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    let pairs: Vec<serde_json::Value> = FIELDS
        .iter()
        .enumerate()
        .flat_map(|(i, first)| {
            FIELDS[i + 1..]
                .iter()
                .map(move |second| serde_json::json!({"required": [first, second]}))
        })
        .collect();
    for schema in schemas.values_mut() {
        let has_all = FIELDS
            .iter()
            .all(|field| schema.pointer(&format!("/properties/{field}")).is_some());
        if let (true, Some(object)) = (has_all, schema.as_object_mut()) {
            object.insert("not".to_owned(), serde_json::json!({"anyOf": pairs}));
        }
    }
    if let Some(object) = schemas
        .get_mut("CompleteLoginBody")
        .and_then(serde_json::Value::as_object_mut)
    {
        let one: Vec<serde_json::Value> = FIELDS
            .iter()
            .map(|field| serde_json::json!({"required": [field]}))
            .collect();
        object.insert("anyOf".to_owned(), serde_json::Value::Array(one));
    }
}

fn api_router<S: Store>() -> OpenApiRouter<Arc<RestState<S>>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(handlers::register))
        .routes(routes!(handlers::login))
        .routes(routes!(handlers::logout))
        .routes(routes!(handlers::logout_all))
        .routes(routes!(handlers::verify))
        .routes(routes!(handlers::me, handlers::delete_me))
        .routes(routes!(handlers::refresh))
        .routes(routes!(
            handlers::change_password,
            passwordless::set_password
        ))
        .routes(routes!(handlers::list_sessions))
        .routes(routes!(handlers::revoke_session))
        .routes(routes!(handlers::jwks))
        .routes(routes!(second_factor::complete_login))
        .routes(routes!(
            second_factor::start_totp_enrollment,
            second_factor::disable_totp
        ))
        .routes(routes!(second_factor::regenerate_recovery_codes))
        .routes(routes!(second_factor::reauthenticate))
        .routes(routes!(second_factor::start_passkey_reauthentication))
        .routes(routes!(second_factor::confirm_totp_enrollment))
        .routes(routes!(second_factor::mfa_status))
        .routes(routes!(passkeys::start_passkey_registration))
        .routes(routes!(
            passkeys::finish_passkey_registration,
            passkeys::list_passkeys
        ))
        .routes(routes!(passkeys::rename_passkey, passkeys::remove_passkey))
        .routes(routes!(passkeys::start_passkey_login))
        .routes(routes!(passkeys::finish_passkey_login))
        .routes(routes!(passwordless::start_passkey_signup))
        .routes(routes!(passwordless::register_with_passkey))
        .routes(routes!(email::set_email))
        .routes(routes!(email::verify_email))
        .routes(routes!(email::resend_email_verification))
        .routes(routes!(password_reset::request_password_reset))
        .routes(routes!(password_reset::reset_password))
        .routes(routes!(password_reset::start_passkey_password_reset))
}

/// The Prometheus text exposition of every metric.
async fn prometheus_metrics() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
}

/// A method a path does not serve: a problem, with the `Allow` header the
/// router adds to it.
async fn method_not_allowed(method: Method, uri: Uri) -> Problem {
    Problem::method_not_allowed(&method, uri.path())
}

/// Unknown paths: a gRPC client gets UNIMPLEMENTED as gRPC expects, anyone
/// else a 404 problem.
async fn not_found(request: Request<axum::body::Body>) -> Response {
    if crate::http::client_gone::is_grpc(request.headers()) {
        tonic::Status::unimplemented("unknown service or method").into_http()
    } else {
        Problem::not_found(request.uri().path()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::http::request_metrics::{PARAMETER_ROUTES, REST_ROUTES, known_route};
    use crate::proxy::FORWARD_AUTH_PATH;
    use crate::storage::Database;

    /// The routes `router` serves beside the documented API.
    const UNDOCUMENTED_ROUTES: [&str; 3] = [FORWARD_AUTH_PATH, "/openapi.json", "/metrics"];

    #[test]
    fn request_metrics_count_exactly_the_routes_the_router_serves() {
        let (_, openapi) = api_router::<Database>().split_for_parts();
        let oidc_paths = crate::oidc::paths();
        let served: BTreeSet<&str> = openapi
            .paths
            .paths
            .keys()
            .map(String::as_str)
            .chain(oidc_paths.iter().map(String::as_str))
            .chain(UNDOCUMENTED_ROUTES)
            .collect();
        for route in &served {
            let example = route.replace("{id}", "0190b5c4-7e3a-7d2c-9f00-000000000000");
            assert_eq!(
                known_route(&example),
                Some(*route),
                "{route} is served but counted as `other`"
            );
        }
        let counted: BTreeSet<&str> = REST_ROUTES.into_iter().chain(PARAMETER_ROUTES).collect();
        assert_eq!(counted, served, "routes counted that nothing serves");
    }
}
