//! Second factors: enrolling TOTP (with its recovery codes), the ticket a
//! Login hands out when an account has one, and completing that Login with
//! a code. Every code is spent with one conditional write (a TOTP step, a
//! recovery code, the ticket), so that of racing calls on any number of
//! instances exactly one wins; wrong codes count against the account's
//! budget whichever instance they reach.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::authentication::{Authentication, Method};
use super::credentials::recovery_codes::{self, RecoveryCode};
use super::credentials::totp::{self, TotpCode, TotpSecret};
use super::error::{AuthError, FieldViolation, TokenRejection};
use super::opaque_tokens::MFA_TICKET;
use super::passkey_second_factor::Binding;
use super::passkeys::{PasskeySettings, parse_assertion};
use super::ports::{
    AccountFacts, MfaTicketRecord, RecoveryCodeRecord, Spend, Store, TotpRecord, UserRecord,
};
use super::secrets_at_rest::totp_context;
use super::security_notices::SecurityEvent;
use super::service::{Authenticator, ClientInfo, Session, User};
use super::sessions::caller;
use crate::deadline::Deadline;
use authd_token::Claims;
use webauthn_rs::prelude::PublicKeyCredential;

/// How second factors behave.
#[derive(Debug, Clone)]
pub struct SecondFactorSettings {
    /// The issuer authenticator apps show (`--totp-issuer`).
    pub totp_issuer: String,
    /// How long a Login may take to complete its second factor.
    pub ticket_lifetime: Duration,
    /// How recent an authentication sensitive operations need.
    pub reauthentication_max_age: Duration,
    /// Passkeys: the relying party and how long a ceremony may take.
    pub passkeys: PasskeySettings,
}

/// Codes a ticket may be tried with before the Login must start over.
const MAX_TICKET_ATTEMPTS: i32 = 5;

/// What Login hands out instead of a session when a second factor is due.
#[derive(Clone)]
pub struct SecondFactorChallenge {
    /// Opaque and single use; secret, never logged.
    pub ticket: String,
    /// What the account can prove itself with: `totp`, `recovery_code`,
    /// `passkey`.
    pub methods: Vec<&'static str>,
    pub expires_in: u32,
    /// With `passkey`: the request options for the account's passkeys,
    /// whose challenge is bound to the ticket.
    pub passkey_options_json: Option<String>,
}

impl std::fmt::Debug for SecondFactorChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorChallenge")
            .field("methods", &self.methods)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A Login's outcome: a session, or a second factor to prove first.
#[derive(Debug)]
pub enum LoginOutcome {
    Session(Session),
    SecondFactorRequired(SecondFactorChallenge),
}

/// A second factor as a request presents it.
#[derive(Debug, Clone)]
pub enum SecondFactorProof {
    Totp(TotpCode),
    RecoveryCode(RecoveryCode),
    /// A passkey's assertion (`credential.toJSON()`), for the challenge
    /// bound to the ticket or to the caller's session.
    Passkey(Box<PublicKeyCredential>),
}

/// A request's second-factor fields (the `oneof second` of every
/// message that takes one, and its REST bodies), as each surface reads
/// them: at most one is set.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecondFactorFields<'a> {
    pub totp_code: Option<&'a str>,
    pub recovery_code: Option<&'a str>,
    pub passkey_credential_json: Option<&'a str>,
}

impl SecondFactorProof {
    /// Exactly one of a request's second-factor fields, parsed: more than
    /// one or none is `INVALID_ARGUMENT` naming the fields, a malformed
    /// code `MfaCodeInvalid`, an assertion that is no credential JSON
    /// `PasskeyVerificationFailed`.
    pub fn parse(fields: SecondFactorFields<'_>) -> Result<Self, AuthError> {
        Self::parse_optional(fields)?.ok_or_else(|| {
            AuthError::InvalidInput(vec![FieldViolation {
                field: "totp_code",
                reason: "FIELD_REQUIRED",
                description:
                    "a totp_code, a recovery_code or a passkey_credential_json is required".into(),
            }])
        })
    }

    /// As [`parse`](Self::parse), for requests where the second factor may
    /// be left out (step-up: a recent authentication with it also counts).
    pub fn parse_optional(fields: SecondFactorFields<'_>) -> Result<Option<Self>, AuthError> {
        match fields {
            SecondFactorFields {
                totp_code: None,
                recovery_code: None,
                passkey_credential_json: None,
            } => Ok(None),
            SecondFactorFields {
                totp_code: Some(code),
                recovery_code: None,
                passkey_credential_json: None,
            } => Ok(Some(Self::Totp(TotpCode::parse(code)?))),
            SecondFactorFields {
                totp_code: None,
                recovery_code: Some(code),
                passkey_credential_json: None,
            } => Ok(Some(Self::RecoveryCode(RecoveryCode::parse(code)?))),
            SecondFactorFields {
                totp_code: None,
                recovery_code: None,
                passkey_credential_json: Some(json),
            } => Ok(Some(Self::Passkey(Box::new(parse_assertion(json)?)))),
            SecondFactorFields {
                recovery_code: Some(_),
                ..
            } => Err(conflict("recovery_code")),
            _ => Err(conflict("passkey_credential_json")),
        }
    }
}

fn conflict(field: &'static str) -> AuthError {
    AuthError::InvalidInput(vec![FieldViolation {
        field,
        reason: "FIELD_CONFLICT",
        description: "send one of totp_code, recovery_code and passkey_credential_json".into(),
    }])
}

/// A completed Login: its session, and how many recovery codes are left
/// when one was used.
#[derive(Debug)]
pub struct CompletedLogin {
    pub session: Session,
    pub recovery_codes_left: Option<u32>,
}

/// A second factor that passed its check.
#[derive(Debug)]
struct PassedFactor {
    method: Method,
    /// When it was a recovery code: how many are left once it is spent.
    recovery_codes_left: Option<u32>,
    spend: FactorSpend,
    /// Whether wrong codes were on record before it, to be forgotten.
    failures_on_record: bool,
}

/// What a second factor that passed spends.
#[derive(Debug, Clone, Copy)]
enum FactorSpend {
    TotpStep(i64),
    RecoveryCode {
        id: Uuid,
        at: DateTime<Utc>,
    },
    /// A passkey, spent as it was checked (its challenge and counter).
    Spent,
}

impl FactorSpend {
    /// As a sign-in's spend, for an account.
    fn as_spend(self, user_id: Uuid) -> Option<Spend<'static>> {
        match self {
            Self::TotpStep(step) => Some(Spend::TotpStep { user_id, step }),
            Self::RecoveryCode { id, at } => Some(Spend::RecoveryCode { id, at }),
            Self::Spent => None,
        }
    }
}

/// Whether the account's TOTP is confirmed.
pub(super) fn has_confirmed_totp(facts: &AccountFacts) -> bool {
    facts
        .totp
        .as_ref()
        .is_some_and(|totp| totp.confirmed_at.is_some())
}

/// A new TOTP secret as the user is shown it.
pub struct TotpEnrollment {
    pub secret: Zeroizing<String>,
    pub otpauth_uri: Zeroizing<String>,
    /// The URI as an SVG QR code.
    pub qr_svg: Zeroizing<String>,
}

/// The caller's second factors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondFactorStatus {
    pub totp_enabled: bool,
    pub totp_pending: bool,
    pub recovery_codes_left: u32,
}

impl<S: Store> Authenticator<S> {
    /// The challenge a Login answers with when the account has a confirmed
    /// second factor, or `None` when the password is all it needs.
    pub(super) async fn second_factor_challenge(
        &self,
        facts: &AccountFacts,
    ) -> Result<Option<SecondFactorChallenge>, AuthError> {
        let user_id = facts.user.id;
        let has_totp = has_confirmed_totp(facts);
        if !has_totp && !facts.has_passkey {
            return Ok(None);
        }
        let mut methods = Vec::with_capacity(3);
        if has_totp {
            methods.push("totp");
        }
        if facts.recovery_codes_left > 0 {
            methods.push("recovery_code");
        }
        let now = Utc::now();
        let ticket = MFA_TICKET.generate()?;
        let lifetime = self.factors.ticket_lifetime;
        let expires_at = now + TimeDelta::from_std(lifetime).map_err(AuthError::internal)?;
        self.store
            .insert_mfa_ticket(&MfaTicketRecord {
                ticket_hash: ticket.hash.clone(),
                user_id,
                created_at: now,
                expires_at,
                attempts: 0,
            })
            .await?;
        let passkey_options_json = if facts.has_passkey {
            self.start_bound_passkey_ceremony(
                user_id,
                Binding::Ticket(&ticket.hash),
                Some(expires_at),
            )
            .await?
        } else {
            None
        };
        if passkey_options_json.is_some() {
            methods.push("passkey");
        }
        tracing::info!(%user_id, "password accepted; second factor required");
        Ok(Some(SecondFactorChallenge {
            ticket: ticket.token,
            methods,
            expires_in: u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX),
            passkey_options_json,
        }))
    }

    /// Finishes a Login that answered with a challenge: the ticket and a
    /// right code start a session that counts both factors. The ticket and
    /// the code are spent in the transaction that starts the session: of
    /// racing calls, one has a session, and a completion commits twice (the
    /// ticket's attempt, then the session).
    #[tracing::instrument(skip_all, fields(client = %client.address))]
    pub async fn complete_login(
        &self,
        ticket: &str,
        proof: SecondFactorProof,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<CompletedLogin, AuthError> {
        let ticket_hash = MFA_TICKET
            .parse(ticket)
            .ok_or(AuthError::MfaTicketInvalid)?;
        let now = Utc::now();
        let ticket = self
            .store
            .attempt_mfa_ticket(&ticket_hash, now, MAX_TICKET_ATTEMPTS)
            .await?
            .ok_or(AuthError::MfaTicketInvalid)?;
        let user_id = ticket.user_id;
        let facts = self
            .store
            .account_facts(user_id)
            .await?
            .ok_or(AuthError::MfaTicketInvalid)?;
        if facts.user.disabled_at.is_some() {
            return Err(AuthError::AccountDisabled);
        }
        let passed = self
            .check_second_factor_unspent(
                &facts,
                proof,
                Some(Binding::Ticket(&ticket_hash)),
                deadline,
            )
            .await?;
        let mut spent = vec![Spend::MfaTicket(&ticket_hash)];
        spent.extend(passed.spend.as_spend(user_id));
        let notices = match passed.recovery_codes_left {
            Some(_) => self.security_notice(
                &facts.user,
                facts.email.as_ref(),
                SecurityEvent::RecoveryCodeUsed,
                client,
            ),
            None => Vec::new(),
        };
        let authentication = Authentication::password(Utc::now()).and(passed.method);
        let user = User::new(facts.user, facts.email.as_ref());
        let session = match self
            .start_session_spending(user, client, authentication, &spent, notices.as_slice())
            .await?
        {
            Ok(session) => session,
            // Of racing completions of one ticket, one.
            Err(0) => return Err(AuthError::MfaTicketInvalid),
            // The code was spent since it was checked (a replay).
            Err(_) => return Err(self.refuse_second_factor(user_id).await?),
        };
        self.accept_second_factor(user_id, &passed).await?;
        Ok(CompletedLogin {
            session,
            recovery_codes_left: passed.recovery_codes_left,
        })
    }

    /// Checks and spends a second factor of the account, within its budget
    /// of wrong codes: the method that passed, and the recovery codes left
    /// when it was one. A passkey answers the challenge bound to
    /// `passkey_binding`; a refused one counts as a wrong code, refused
    /// with its passkey reason.
    pub(super) async fn check_second_factor(
        &self,
        user_id: Uuid,
        proof: SecondFactorProof,
        passkey_binding: Option<Binding<'_>>,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<(Method, Option<u32>), AuthError> {
        let facts = self
            .store
            .account_facts(user_id)
            .await?
            .ok_or(AuthError::InvalidToken(TokenRejection::Revoked))?;
        let passed = self
            .check_second_factor_unspent(&facts, proof, passkey_binding, deadline)
            .await?;
        let spent = match passed.spend {
            FactorSpend::TotpStep(step) => self.store.spend_totp_step(user_id, step).await?,
            FactorSpend::RecoveryCode { id, at } => {
                let notice = self.security_notice(
                    &facts.user,
                    facts.email.as_ref(),
                    SecurityEvent::RecoveryCodeUsed,
                    client,
                );
                self.store
                    .spend_recovery_code(id, at, notice.as_slice())
                    .await?
            }
            FactorSpend::Spent => true,
        };
        if !spent {
            return Err(self.refuse_second_factor(user_id).await?);
        }
        self.accept_second_factor(user_id, &passed).await?;
        Ok((passed.method, passed.recovery_codes_left))
    }

    /// Checks a second factor of the account, within its budget of wrong
    /// codes (a wrong one counts in it), without spending it: a TOTP step
    /// or recovery code is spent with what it unlocks. A passkey is checked
    /// and spent here, against the challenge bound to `passkey_binding`.
    async fn check_second_factor_unspent(
        &self,
        facts: &AccountFacts,
        proof: SecondFactorProof,
        passkey_binding: Option<Binding<'_>>,
        deadline: Option<Deadline>,
    ) -> Result<PassedFactor, AuthError> {
        let user_id = facts.user.id;
        let failures_on_record = self
            .limits
            .check_read_second_factor_failures(facts, Utc::now().timestamp_millis())?;
        let passed = match proof {
            SecondFactorProof::Totp(code) => self
                .check_totp_code(facts, &code)?
                .map(|step| PassedFactor {
                    method: Method::Totp,
                    recovery_codes_left: None,
                    spend: FactorSpend::TotpStep(step),
                    failures_on_record,
                })
                .ok_or(AuthError::MfaCodeInvalid),
            SecondFactorProof::RecoveryCode(code) => self
                .find_recovery_code(user_id, code, deadline)
                .await?
                .map(|(id, left)| PassedFactor {
                    method: Method::RecoveryCode,
                    recovery_codes_left: Some(left),
                    spend: FactorSpend::RecoveryCode { id, at: Utc::now() },
                    failures_on_record,
                })
                .ok_or(AuthError::MfaCodeInvalid),
            SecondFactorProof::Passkey(assertion) => self
                .check_passkey_assertion(user_id, passkey_binding, &assertion)
                .await?
                .map(|method| PassedFactor {
                    method,
                    recovery_codes_left: None,
                    spend: FactorSpend::Spent,
                    failures_on_record,
                }),
        };
        match passed {
            Ok(passed) => Ok(passed),
            Err(AuthError::MfaCodeInvalid) => Err(self.refuse_second_factor(user_id).await?),
            Err(refusal) => {
                self.refuse_second_factor(user_id).await?;
                Err(refusal)
            }
        }
    }

    /// A wrong second factor: one unit of the account's budget spent; the
    /// refusal to answer with.
    async fn refuse_second_factor(&self, user_id: Uuid) -> Result<AuthError, AuthError> {
        self.limits
            .record_second_factor_failure(&self.store, user_id, Utc::now().timestamp_millis())
            .await?;
        tracing::info!(%user_id, "wrong second-factor code");
        Ok(AuthError::MfaCodeInvalid)
    }

    /// A right second factor, spent: the budget of wrong codes is full
    /// again.
    async fn accept_second_factor(
        &self,
        user_id: Uuid,
        passed: &PassedFactor,
    ) -> Result<(), AuthError> {
        if passed.failures_on_record {
            self.limits
                .reset_second_factor_failures(&self.store, user_id)
                .await?;
        }
        if let Some(left) = passed.recovery_codes_left {
            tracing::info!(%user_id, left, "recovery code used");
        }
        tracing::info!(%user_id, method = passed.method.amr(), "second factor accepted");
        Ok(())
    }

    /// The time step `code` is right for now, for the account's confirmed
    /// TOTP, if it is later than the last one spent.
    fn check_totp_code(
        &self,
        facts: &AccountFacts,
        code: &TotpCode,
    ) -> Result<Option<i64>, AuthError> {
        let Some(totp) = facts
            .totp
            .as_ref()
            .filter(|totp| totp.confirmed_at.is_some())
        else {
            return Ok(None);
        };
        let secret = self.open_totp_secret(totp)?;
        let Some(step) = secret.matching_step(code, unix_now())? else {
            return Ok(None);
        };
        let step = totp::step_number(step);
        Ok(totp
            .last_used_step
            .is_none_or(|last| last < step)
            .then_some(step))
    }

    /// Which of the account's unused recovery codes `code` is, and how
    /// many would be left once it is spent.
    async fn find_recovery_code(
        &self,
        user_id: Uuid,
        code: RecoveryCode,
        deadline: Option<Deadline>,
    ) -> Result<Option<(Uuid, u32)>, AuthError> {
        let unused = self.store.unused_recovery_codes(user_id).await?;
        let ticket = self.hasher.admit(deadline)?;
        let stored = unused
            .iter()
            .map(|record| (record.id, record.code_hash.clone()))
            .collect();
        let Some(code_id) = self.hasher.find_recovery_code(ticket, code, stored).await? else {
            return Ok(None);
        };
        let left = u32::try_from(unused.len().saturating_sub(1)).unwrap_or(u32::MAX);
        Ok(Some((code_id, left)))
    }

    /// Starts enrolling TOTP for the caller: a new secret, pending until
    /// [`confirm_totp_enrollment`](Self::confirm_totp_enrollment).
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn start_totp_enrollment(
        &self,
        claims: &Claims,
    ) -> Result<TotpEnrollment, AuthError> {
        self.require_recent_authentication(claims)?;
        let record = self.caller_record(claims).await?;
        let secret = TotpSecret::generate()?;
        let enrollment = secret.enrollment(&self.factors.totp_issuer, &record.username)?;
        let stored = TotpRecord {
            user_id: record.id,
            sealed_secret: self.seal_totp_secret(record.id, &secret)?,
            created_at: Utc::now(),
            confirmed_at: None,
            last_used_step: None,
        };
        if !self.store.put_pending_totp(&stored).await? {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        tracing::info!("TOTP enrollment started");
        let qr_svg = crate::qr::svg(&enrollment.otpauth_uri)
            .ok_or_else(|| AuthError::internal("the otpauth URI does not fit a QR code"))?;
        Ok(TotpEnrollment {
            secret: enrollment.secret,
            otpauth_uri: enrollment.otpauth_uri,
            qr_svg: Zeroizing::new(qr_svg),
        })
    }

    /// Activates the caller's pending TOTP with a current code: returns the
    /// new recovery codes, to be shown once. Every other session of the
    /// account ends.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn confirm_totp_enrollment(
        &self,
        claims: &Claims,
        code: TotpCode,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<Vec<RecoveryCode>, AuthError> {
        let user_id = caller(claims)?;
        let pending = match self.store.totp_of(user_id).await? {
            Some(totp) if totp.confirmed_at.is_some() => return Err(AuthError::TotpAlreadyEnabled),
            Some(totp) => totp,
            None => return Err(AuthError::TotpEnrollmentNotStarted),
        };
        let secret = self.open_totp_secret(&pending)?;
        let step = secret
            .matching_step(&code, unix_now())?
            .ok_or(AuthError::MfaCodeInvalid)?;
        let (codes, records) = self.new_recovery_codes(user_id, deadline).await?;
        let now = Utc::now();
        let notices = self
            .security_notice_for(user_id, SecurityEvent::TotpEnabled, client)
            .await?;
        if !self
            .store
            .confirm_totp(
                user_id,
                &pending.sealed_secret,
                totp::step_number(step),
                &records,
                now,
                notices.as_slice(),
            )
            .await?
        {
            // Replaced by a new start, or confirmed by a racing call.
            return Err(match self.store.totp_of(user_id).await? {
                Some(totp) if totp.confirmed_at.is_some() => AuthError::TotpAlreadyEnabled,
                _ => AuthError::TotpEnrollmentNotStarted,
            });
        }
        self.end_other_sessions(user_id, claims.session_id(), "second_factor_enabled")
            .await?;
        tracing::info!("TOTP enabled");
        Ok(codes)
    }

    /// Which second factors the caller's account has.
    pub async fn second_factor_status(
        &self,
        claims: &Claims,
    ) -> Result<SecondFactorStatus, AuthError> {
        let user_id = caller(claims)?;
        let totp = self.store.totp_of(user_id).await?;
        let codes = self.store.unused_recovery_codes(user_id).await?;
        Ok(SecondFactorStatus {
            totp_enabled: totp
                .as_ref()
                .is_some_and(|totp| totp.confirmed_at.is_some()),
            totp_pending: totp
                .as_ref()
                .is_some_and(|totp| totp.confirmed_at.is_none()),
            recovery_codes_left: u32::try_from(codes.len()).unwrap_or(u32::MAX),
        })
    }

    /// A new set of recovery codes and their records, hashed.
    pub(super) async fn new_recovery_codes(
        &self,
        user_id: Uuid,
        deadline: Option<Deadline>,
    ) -> Result<(Vec<RecoveryCode>, Vec<RecoveryCodeRecord>), AuthError> {
        let codes = recovery_codes::generate_set()?;
        let ticket = self.hasher.admit(deadline)?;
        let hashes = self
            .hasher
            .hash_recovery_codes(ticket, codes.clone())
            .await?;
        let now = Utc::now();
        let records = hashes
            .into_iter()
            .map(|code_hash| RecoveryCodeRecord {
                id: Uuid::now_v7(),
                user_id,
                code_hash,
                created_at: now,
                used_at: None,
            })
            .collect();
        Ok((codes, records))
    }

    /// The caller's account.
    pub(super) async fn caller_record(&self, claims: &Claims) -> Result<UserRecord, AuthError> {
        self.store
            .find_user_by_id(caller(claims)?)
            .await?
            .ok_or(AuthError::InvalidToken(TokenRejection::Revoked))
    }

    /// Ends every session of a user but `keep` (the caller's own).
    pub(super) async fn end_other_sessions(
        &self,
        user_id: Uuid,
        keep: Option<Uuid>,
        reason: &'static str,
    ) -> Result<(), AuthError> {
        for session in self.store.live_sessions_of(user_id, Utc::now()).await? {
            if Some(session.id) != keep {
                self.end_session(session.id, user_id, reason).await?;
            }
        }
        Ok(())
    }

    fn seal_totp_secret(&self, user_id: Uuid, secret: &TotpSecret) -> Result<Vec<u8>, AuthError> {
        Ok(self
            .secrets
            .seal(secret.as_bytes(), &totp_context(user_id))?)
    }

    fn open_totp_secret(&self, totp: &TotpRecord) -> Result<TotpSecret, AuthError> {
        let bytes = self
            .secrets
            .open(&totp.sealed_secret, &totp_context(totp.user_id))?;
        Ok(TotpSecret::from_bytes(bytes))
    }
}

fn unix_now() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or_default()
}
