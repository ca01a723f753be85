//! The revocation announcements' payload on PostgreSQL's NOTIFY channel: a
//! compact text form of `RevocationEvent`, written and read only here.

use crate::domain::{RevocationEvent, RevokedToken};

/// A compact text form for a notification payload.
pub fn encode(event: &RevocationEvent) -> String {
    match event {
        RevocationEvent::Token(revocation) => format!(
            "token {} {} {}",
            revocation.jti, revocation.user_id, revocation.expires_at
        ),
        RevocationEvent::AllOf {
            user_id,
            revoked_through,
        } => format!("all {user_id} {revoked_through}"),
        RevocationEvent::Session {
            session_id,
            user_id,
            ended_at,
        } => format!("session {session_id} {user_id} {ended_at}"),
        RevocationEvent::AccountDisabled { user_id, disabled } => {
            format!(
                "account {user_id} {}",
                if *disabled { "disabled" } else { "enabled" }
            )
        }
    }
}

/// Reads what [`encode`] wrote.
pub fn decode(payload: &str) -> Option<RevocationEvent> {
    let fields: Vec<&str> = payload.split(' ').collect();
    match fields.as_slice() {
        ["token", jti, user_id, expires_at] => Some(RevocationEvent::Token(RevokedToken {
            jti: (*jti).to_owned(),
            user_id: user_id.parse().ok()?,
            expires_at: expires_at.parse().ok()?,
        })),
        ["all", user_id, revoked_through] => Some(RevocationEvent::AllOf {
            user_id: user_id.parse().ok()?,
            revoked_through: revoked_through.parse().ok()?,
        }),
        ["session", session_id, user_id, ended_at] => Some(RevocationEvent::Session {
            session_id: session_id.parse().ok()?,
            user_id: user_id.parse().ok()?,
            ended_at: ended_at.parse().ok()?,
        }),
        ["account", user_id, state] => Some(RevocationEvent::AccountDisabled {
            user_id: user_id.parse().ok()?,
            disabled: match *state {
                "disabled" => true,
                "enabled" => false,
                _ => return None,
            },
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn revocation_notices_read_back_as_written() {
        let events = [
            RevocationEvent::Token(RevokedToken {
                jti: "AbC-_123".into(),
                user_id: Uuid::now_v7(),
                expires_at: 1_800_000_000,
            }),
            RevocationEvent::AllOf {
                user_id: Uuid::now_v7(),
                revoked_through: 1_700_000_000,
            },
            RevocationEvent::Session {
                session_id: Uuid::now_v7(),
                user_id: Uuid::now_v7(),
                ended_at: 1_700_000_001,
            },
            RevocationEvent::AccountDisabled {
                user_id: Uuid::now_v7(),
                disabled: true,
            },
            RevocationEvent::AccountDisabled {
                user_id: Uuid::now_v7(),
                disabled: false,
            },
        ];
        for event in events {
            assert_eq!(decode(&encode(&event)), Some(event));
        }
        assert_eq!(decode("token only-two"), None);
    }
}
