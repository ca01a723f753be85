//! Request bodies, read in authd's own words. Deriving `Deserialize` would
//! stop at the first missing or ill-typed field and word it for Rust
//! programmers ("missing field `username` at line 1 column 2"), while a
//! client filling in a form wants every bad field at once, named as the body
//! names it. So a body is parsed as a JSON value, each body type reads its
//! fields from it by name (`FromFields`), every field missing or of the
//! wrong type is noted, the domain's rules check the others
//! (`Unchecked::parse`), and one `400` lists it all.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use http::HeaderMap;
use http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

use crate::domain::{AuthError, FieldViolation};
use crate::http::problem::{BodyRejection, Problem};

/// A body type, read field by field from a JSON object.
pub trait FromFields: Sized {
    /// Reads every field through `fields`, which notes the ones missing or
    /// of the wrong type.
    fn from_fields(fields: &mut Fields) -> Self;
}

/// The fields of a JSON object body, taken out by name.
pub struct Fields {
    object: Map<String, Value>,
    /// The fields read, in order: errors are listed in this order.
    read: Vec<&'static str>,
    unreadable: Vec<FieldViolation>,
}

impl Fields {
    /// A required string. An empty one stands in for a value missing or of
    /// another type, which is noted.
    pub fn string(&mut self, name: &'static str) -> String {
        self.read.push(name);
        let violation = match self.object.remove(name) {
            Some(Value::String(value)) => return value,
            None => FieldViolation {
                field: name,
                reason: "FIELD_REQUIRED",
                description: format!("{name} is required"),
            },
            Some(other) => FieldViolation {
                field: name,
                reason: "FIELD_INVALID_TYPE",
                description: format!("{name} must be a string, not {}", json_type(&other)),
            },
        };
        self.unreadable.push(violation);
        String::new()
    }
}

impl Fields {
    /// An optional string: absent is `None`; another type, `null`
    /// included, is noted.
    pub fn optional_string(&mut self, name: &'static str) -> Option<String> {
        self.read.push(name);
        match self.object.remove(name) {
            Some(Value::String(value)) => Some(value),
            None => None,
            Some(other) => {
                self.unreadable.push(FieldViolation {
                    field: name,
                    reason: "FIELD_INVALID_TYPE",
                    description: format!("{name} must be a string, not {}", json_type(&other)),
                });
                None
            }
        }
    }
}

/// A body as read, not yet checked: every field, with an empty string
/// standing in for each missing or ill-typed one, and what was wrong with
/// those.
pub struct Unchecked<T> {
    body: T,
    read: Vec<&'static str>,
    unreadable: Vec<FieldViolation>,
}

impl<T: FromFields> Unchecked<T> {
    /// Parses `bytes` as a JSON object and reads `T` from it.
    fn read(bytes: &[u8]) -> Result<Self, BodyRejection> {
        let value: Value = serde_json::from_slice(bytes).map_err(BodyRejection::Malformed)?;
        let Value::Object(object) = value else {
            return Err(BodyRejection::Invalid(vec![FieldViolation {
                field: "",
                reason: "FIELD_INVALID_TYPE",
                description: format!("the body must be a JSON object, not {}", json_type(&value)),
            }]));
        };
        let mut fields = Fields {
            object,
            read: Vec::new(),
            unreadable: Vec::new(),
        };
        let body = T::from_fields(&mut fields);
        Ok(Self {
            body,
            read: fields.read,
            unreadable: fields.unreadable,
        })
    }
}

impl<T> Unchecked<T> {
    /// The body, if every field was there with its type.
    pub fn complete(self) -> Result<T, BodyRejection> {
        if self.unreadable.is_empty() {
            Ok(self.body)
        } else {
            Err(BodyRejection::Invalid(self.unreadable))
        }
    }

    /// The body as the domain's `parse` accepts it, or every refusal in one
    /// answer: each field missing or of the wrong type, and what `parse`
    /// finds wrong with the others. What it says about the stand-ins of
    /// unreadable fields is dropped, so `parse` must check each field on
    /// its own, as `Credentials::for_login` and `Password::for_change` do.
    pub fn parse<U>(
        self,
        parse: impl FnOnce(T) -> Result<U, AuthError>,
    ) -> Result<U, BodyRejection> {
        let Self {
            body,
            read,
            mut unreadable,
        } = self;
        let parsed = parse(body);
        if unreadable.is_empty() {
            return parsed.map_err(BodyRejection::Refused);
        }
        if let Err(AuthError::InvalidInput(violations)) = parsed {
            let readable: Vec<FieldViolation> = violations
                .into_iter()
                .filter(|violation| !unreadable.iter().any(|u| u.field == violation.field))
                .collect();
            unreadable.extend(readable);
        }
        unreadable.sort_by_key(|violation| {
            read.iter()
                .position(|name| *name == violation.field)
                .unwrap_or(usize::MAX)
        });
        Err(BodyRejection::Invalid(unreadable))
    }
}

/// A JSON object body, refused as problem+json when it is not one: `415`
/// for another media type or charset, `413` when too large, `400` when not
/// JSON (`MALFORMED_JSON`) or not of the body type's shape
/// (`INVALID_BODY`).
pub struct JsonBody<T>(pub Unchecked<T>);

impl<S: Send + Sync, T: FromFields> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        // The media type first: a large body of the wrong type is not read.
        require_json(request.headers())?;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(BodyRejection::from)?;
        Ok(Self(Unchecked::read(&bytes)?))
    }
}

/// A body that may be left out: `None` if empty, else as `JsonBody`.
pub struct OptionalJsonBody<T>(pub Option<Unchecked<T>>);

impl<S: Send + Sync, T: FromFields> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let headers = request.headers().clone();
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(BodyRejection::from)?;
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        require_json(&headers)?;
        Ok(Self(Some(Unchecked::read(&bytes)?)))
    }
}

/// `application/json` or another `+json` type, in UTF-8: without a
/// `charset`, or with `charset=utf-8`. JSON exchanged between systems must
/// be UTF-8 (RFC 8259 section 8.1); a body declared in another charset would
/// be misread, so it is refused rather than guessed at.
fn require_json(headers: &HeaderMap) -> Result<(), BodyRejection> {
    let not_json = || {
        BodyRejection::UnsupportedMediaType("expected a body with Content-Type: application/json")
    };
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(not_json)?;
    let mut parameters = content_type.split(';');
    let essence = parameters.next().unwrap_or_default().trim();
    let (kind, subtype) = essence.split_once('/').ok_or_else(not_json)?;
    let subtype = subtype.to_ascii_lowercase();
    if !kind.eq_ignore_ascii_case("application")
        || !(subtype == "json" || subtype.ends_with("+json"))
    {
        return Err(not_json());
    }
    for parameter in parameters {
        let Some((name, value)) = parameter.split_once('=') else {
            return Err(not_json());
        };
        let value = value.trim().trim_matches('"');
        if name.trim().eq_ignore_ascii_case("charset") && !value.eq_ignore_ascii_case("utf-8") {
            return Err(BodyRejection::UnsupportedMediaType(
                "JSON bodies must be UTF-8: send charset=utf-8 or no charset",
            ));
        }
    }
    Ok(())
}

/// A JSON value's type, as an error message names it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn content_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn json_in_utf_8_is_the_one_media_type_accepted() {
        for accepted in [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON;charset=\"UTF-8\"",
            "application/merge-patch+json",
            "application/json; charset=utf-8; profile=x",
        ] {
            assert!(require_json(&content_type(accepted)).is_ok(), "{accepted}");
        }
        for refused in [
            "application/json; charset=latin1",
            "application/json; charset=utf-16",
            "application/json; charset",
            "application/jsonx",
            "text/json",
            "text/plain",
            "json",
            "",
        ] {
            let rejection = require_json(&content_type(refused)).expect_err(refused);
            assert_eq!(Problem::from(rejection).status, 415, "{refused}");
        }
        assert!(require_json(&HeaderMap::new()).is_err());
    }

    struct Pair {
        first: String,
        second: String,
    }

    impl FromFields for Pair {
        fn from_fields(fields: &mut Fields) -> Self {
            Self {
                first: fields.string("first"),
                second: fields.string("second"),
            }
        }
    }

    fn reasons(problem: &Problem) -> Vec<(&str, &str)> {
        problem
            .errors
            .iter()
            .map(|error| (error.field.as_str(), error.reason.as_str()))
            .collect()
    }

    /// A rule that refuses both fields of a pair, each on its own.
    fn refuse_both(pair: Pair) -> Result<(), AuthError> {
        let violation = |field| FieldViolation {
            field,
            reason: "RULE",
            description: format!("{field} breaks the rule"),
        };
        let _ = (pair.first, pair.second);
        Err(AuthError::InvalidInput(vec![
            violation("first"),
            violation("second"),
        ]))
    }

    #[test]
    fn unreadable_fields_and_the_rules_verdict_on_the_others_come_together() {
        let unchecked = Unchecked::<Pair>::read(br#"{"second": "x"}"#).expect("an object");
        let problem = Problem::from(unchecked.parse(refuse_both).expect_err("refused"));

        assert_eq!(problem.reason, "INVALID_BODY");
        assert_eq!(
            reasons(&problem),
            [("first", "FIELD_REQUIRED"), ("second", "RULE")]
        );
    }

    #[test]
    fn a_readable_body_gets_the_rules_own_answer() {
        let unchecked = Unchecked::<Pair>::read(br#"{"first": "a", "second": "b"}"#).expect("read");
        let problem = Problem::from(unchecked.parse(refuse_both).expect_err("refused"));

        assert_eq!(problem.reason, "RULE");
        assert_eq!(reasons(&problem), [("first", "RULE"), ("second", "RULE")]);
    }

    #[test]
    fn every_field_of_the_wrong_type_is_named_with_the_type_found() {
        let unchecked =
            Unchecked::<Pair>::read(br#"{"first": [1], "second": null}"#).expect("read");
        let problem = Problem::from(unchecked.complete().err().expect("refused"));

        assert_eq!(
            reasons(&problem),
            [
                ("first", "FIELD_INVALID_TYPE"),
                ("second", "FIELD_INVALID_TYPE")
            ]
        );
        assert_eq!(
            problem.errors[0].detail,
            "first must be a string, not an array"
        );
        assert_eq!(
            problem.errors[1].detail,
            "second must be a string, not null"
        );
    }
}
