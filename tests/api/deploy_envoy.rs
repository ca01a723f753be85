//! `deploy/envoy/envoy.yaml` and `envoy-jwt.yaml` checked against Envoy's
//! own protos, on every `cargo test`: the real Envoy runs them only under
//! `.ci/proxies` (`proxies.rs`). Envoy reads a YAML bootstrap as the
//! protobuf JSON mapping of `envoy.config.bootstrap.v3.Bootstrap`, refusing
//! unknown fields and `@type`s it does not know; this check does the same
//! with the protos that ship in the `envoy-types` package, then asserts the
//! few facts that make the examples protect anything.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;
use std::time::Instant;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::Value;

const EXAMPLE: &str = include_str!("../../deploy/envoy/envoy.yaml");
const JWT_EXAMPLE: &str = include_str!("../../deploy/envoy/envoy-jwt.yaml");

/// The proto files declaring the messages the example names, in its
/// `@type`s and in the bootstrap itself; their imports come along. A new
/// `@type` in the example fails the check with "message '...' not found"
/// until its file is listed here.
const PROTOS: &[&str] = &[
    "envoy/config/bootstrap/v3/bootstrap.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto",
    "envoy/extensions/filters/http/jwt_authn/v3/config.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
];

/// Where each import root sits under the package's `proto/` directory.
const INCLUDE_ROOTS: &[&str] = &[
    "data-plane-api",
    "xds",
    "protoc-gen-validate",
    "googleapis",
    "cel-spec",
    "opentelemetry-proto",
    "client_model",
];

/// Compiled once for the whole test binary.
static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    let started = Instant::now();
    let root = envoy_types_protos();
    let includes = INCLUDE_ROOTS.iter().map(|dir| root.join(dir));
    let pool = protox::Compiler::new(includes)
        .expect("include paths")
        .open_files(PROTOS)
        .unwrap_or_else(|e| panic!("compiling Envoy's protos under {}: {e:?}", root.display()))
        .descriptor_pool();
    eprintln!(
        "compiled {} proto files in {:?}",
        pool.files().len(),
        started.elapsed()
    );
    pool
});

/// The `proto/` directory of the `envoy-types` package this build resolved,
/// found the way cargo sees it rather than by guessing a registry path.
fn envoy_types_protos() -> PathBuf {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let manifest = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|package| package["name"] == "envoy-types")
        .and_then(|package| package["manifest_path"].as_str())
        .expect("envoy-types among the resolved packages");
    Path::new(manifest)
        .parent()
        .expect("a manifest has a directory")
        .join("proto")
}

/// Parses a bootstrap as Envoy does: YAML read as protobuf JSON, unknown
/// fields refused (`DynamicMessage::deserialize`'s default), every `Any`
/// resolved in the pool. Returns it in canonical form: proto field names,
/// `Any`s expanded, default values left out.
fn parse_bootstrap(yaml: &str) -> Result<Value, String> {
    let json: Value = serde_saphyr::from_str(yaml).map_err(|e| format!("YAML: {e}"))?;
    let bootstrap = POOL
        .get_message_by_name("envoy.config.bootstrap.v3.Bootstrap")
        .expect("Bootstrap in the pool");
    let message = DynamicMessage::deserialize(bootstrap, json).map_err(|e| e.to_string())?;
    let options = SerializeOptions::new().use_proto_field_name(true);
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| e.to_string())
}

/// The element of a JSON array of named things (filters, clusters) with
/// that name.
fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .into_iter()
        .flatten()
        .find(|item| item["name"] == name)
        .unwrap_or_else(|| panic!("nothing named {name} in {list}"))
}

const EXT_AUTHZ: &str = "envoy.filters.http.ext_authz";
const JWT_AUTHN: &str = "envoy.filters.http.jwt_authn";
const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

#[test]
fn the_envoy_example_is_a_valid_bootstrap_that_asks_authd() {
    let bootstrap = parse_bootstrap(EXAMPLE).unwrap_or_else(|e| panic!("envoy.yaml: {e}"));
    assert_asks_authd(&bootstrap);
}

#[test]
fn the_jwt_example_checks_signatures_then_asks_authd() {
    let bootstrap = parse_bootstrap(JWT_EXAMPLE).unwrap_or_else(|e| panic!("envoy-jwt.yaml: {e}"));
    assert_asks_authd(&bootstrap);

    let hcm = connection_manager(&bootstrap);
    let order: Vec<_> = hcm["http_filters"]
        .as_array()
        .expect("http_filters")
        .iter()
        .map(|filter| filter["name"].as_str().expect("a filter's name"))
        .collect();
    assert_eq!(order, [JWT_AUTHN, EXT_AUTHZ, "envoy.filters.http.router"]);

    let jwt = &named(&hcm["http_filters"], JWT_AUTHN)["typed_config"];
    let provider = &jwt["providers"]["authd"];
    // What authd writes by default (--issuer, --audience).
    assert_eq!(provider["issuer"], "authd");
    assert_eq!(provider["audiences"], serde_json::json!(["authd"]));
    // ext_authz must still see the token: jwt_authn removes it otherwise.
    assert_eq!(provider["forward"], true);
    let jwks = &provider["remote_jwks"];
    assert!(
        jwks["http_uri"]["uri"]
            .as_str()
            .is_some_and(|uri| uri.ends_with(":50051/.well-known/jwks.json")),
        "{jwks}"
    );
    // Shorter than the JWKS's max-age with authd's defaults (50s), so a
    // rotated key is known before it signs.
    assert_eq!(jwks["cache_duration"], "30s");
}

/// The connection manager of the (only) listener.
fn connection_manager(bootstrap: &Value) -> &Value {
    let listener = &bootstrap["static_resources"]["listeners"][0];
    &named(
        &listener["filter_chains"][0]["filters"],
        "envoy.filters.network.http_connection_manager",
    )["typed_config"]
}

/// The facts both examples share: ext_authz asks authd, closed on failure,
/// before the router; only /healthz is exempt; headers spelled with
/// underscores never reach the app.
fn assert_asks_authd(bootstrap: &Value) {
    let hcm = connection_manager(bootstrap);
    let http_filters = hcm["http_filters"].as_array().expect("http_filters");

    // X-Authd_User-Id is not x-authd-user-id to Envoy, but it is to an app
    // reading CGI-style variables: such headers are dropped.
    assert_eq!(
        hcm["common_http_protocol_options"]["headers_with_underscores_action"],
        "DROP_HEADER"
    );

    // Filters run in order: the router sends the request on, so whatever
    // comes after it never runs, and ext_authz must come before it.
    let last = http_filters.last().expect("at least one filter");
    assert_eq!(last["name"], "envoy.filters.http.router");
    assert_eq!(
        last["typed_config"]["@type"],
        "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
    );
    let ext_authz = &named(&hcm["http_filters"], EXT_AUTHZ)["typed_config"];
    assert_eq!(
        ext_authz["@type"],
        "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
    );
    // V2 is gone from authd (and from Envoy); a mismatch fails every check.
    assert_eq!(ext_authz["transport_api_version"], "V3");
    // Closed on failure: authd unreachable must not mean "let everyone in".
    // Canonical JSON leaves out false, the default.
    assert_eq!(
        ext_authz.get("failure_mode_allow"),
        None,
        "failure_mode_allow must be false"
    );

    // The cluster ext_authz calls is authd: port 50051, spoken to in HTTP/2
    // (gRPC). Without http2_protocol_options Envoy would send HTTP/1.1.
    let cluster_name = ext_authz["grpc_service"]["envoy_grpc"]["cluster_name"]
        .as_str()
        .expect("ext_authz calls a cluster over envoy_grpc");
    let cluster = named(&bootstrap["static_resources"]["clusters"], cluster_name);
    let endpoints = cluster["load_assignment"]["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .flat_map(|locality| locality["lb_endpoints"].as_array().into_iter().flatten())
        .collect::<Vec<_>>();
    assert!(!endpoints.is_empty(), "{cluster_name} has no endpoint");
    for endpoint in endpoints {
        assert_eq!(
            endpoint["endpoint"]["address"]["socket_address"]["port_value"],
            50051
        );
    }
    let protocol = &cluster["typed_extension_protocol_options"][HTTP_PROTOCOL_OPTIONS];
    assert!(
        protocol["explicit_http_config"]["http2_protocol_options"].is_object(),
        "{cluster_name} must speak HTTP/2: {protocol}"
    );

    // Only /healthz skips authd; every other route is protected.
    let routes = hcm["route_config"]["virtual_hosts"]
        .as_array()
        .expect("virtual_hosts")
        .iter()
        .flat_map(|host| host["routes"].as_array().into_iter().flatten());
    for route in routes {
        let exempt = route["typed_per_filter_config"][EXT_AUTHZ]["disabled"] == true;
        assert_eq!(
            exempt,
            route["match"]["path"] == "/healthz",
            "ext_authz exemption on {}",
            route["match"]
        );
    }
}

#[test]
fn the_check_refuses_unknown_fields_and_unknown_types() {
    // A misspelling inside a typed_config: the Any's contents are checked
    // too, not only the bootstrap's own fields.
    let misspelt = EXAMPLE.replacen("failure_mode_allow:", "failure_mode_alow:", 1);
    assert_ne!(misspelt, EXAMPLE);
    let error = parse_bootstrap(&misspelt).expect_err("an unknown field is refused");
    assert!(error.contains("failure_mode_alow"), "{error}");

    let unknown_type = EXAMPLE.replacen("ext_authz.v3.ExtAuthz\n", "ext_authz.v3.ExtAuth\n", 1);
    assert_ne!(unknown_type, EXAMPLE);
    let error = parse_bootstrap(&unknown_type).expect_err("an unknown @type is refused");
    assert!(
        error.contains("'envoy.extensions.filters.http.ext_authz.v3.ExtAuth' not found"),
        "{error}"
    );
}
