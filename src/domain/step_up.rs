//! Step-up: what sensitive operations (changing the password, deleting the
//! account, disabling TOTP, regenerating recovery codes) ask beyond a valid
//! token. A recent first factor (the password in the request, or a token
//! whose `auth_time` is within `--reauthentication-max-age`) and, for an
//! account with a second factor, the second one too (a code in the request,
//! or a token from a recent authentication that included one). Reauthenticate
//! renews the caller's session's authentication for exactly this.

use chrono::Utc;
use uuid::Uuid;

use super::authentication::Authentication;
use super::credentials::Password;
use super::credentials::recovery_codes::RecoveryCode;
use super::error::AuthError;
use super::passkey_second_factor::Binding;
use super::ports::Store;
use super::second_factor::SecondFactorProof;
use super::security_notices::SecurityEvent;
use super::service::{Authenticator, ClientInfo, User};
use super::sessions::caller;
use super::tokens::AccessToken;
use crate::deadline::Deadline;
use authd_token::Claims;

/// What a request brings to prove its caller is still there.
#[derive(Debug, Clone)]
pub struct StepUp {
    /// The account's password was checked by this very request.
    password_checked: bool,
    second: Option<SecondFactorProof>,
}

impl StepUp {
    /// The request carried the password, already checked, and perhaps a
    /// second factor.
    pub fn with_password(second: Option<SecondFactorProof>) -> Self {
        Self {
            password_checked: true,
            second,
        }
    }

    /// The request carried no password, perhaps a second factor.
    pub fn without_password(second: Option<SecondFactorProof>) -> Self {
        Self {
            password_checked: false,
            second,
        }
    }
}

/// A session's new access token after a reauthentication.
#[derive(Debug, Clone)]
pub struct Reauthenticated {
    pub session_id: Uuid,
    pub user: User,
    pub token: AccessToken,
}

impl<S: Store> Authenticator<S> {
    /// Refuses with `ReauthenticationRequired` unless `step_up` and the
    /// caller's token together show a recent authentication, with the
    /// second factor when the account has one. A code in the request is
    /// checked and spent here, within the account's budget of wrong codes.
    pub(super) async fn require_step_up(
        &self,
        claims: &Claims,
        user_id: Uuid,
        step_up: StepUp,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<(), AuthError> {
        let recent = self.is_recent(claims);
        if !(step_up.password_checked || recent) {
            return Err(self.reauthentication_required());
        }
        if !self.has_second_factor(user_id).await? {
            return Ok(());
        }
        match step_up.second {
            Some(proof) => {
                let binding = claims.session_id().map(Binding::Session);
                self.check_second_factor(user_id, proof, binding, client, deadline)
                    .await?;
                Ok(())
            }
            None if recent && claims.amr.iter().any(|method| method == "mfa") => Ok(()),
            None => Err(self.reauthentication_required()),
        }
    }

    /// Confirms the caller's password (and second factor, when the account
    /// has one) and renews the authentication of the caller's session: a
    /// new access token with a fresh `auth_time`, which the session's
    /// refreshes keep.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub, client = %client.address))]
    pub async fn reauthenticate(
        &self,
        claims: &Claims,
        password: Password,
        second: Option<SecondFactorProof>,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<Reauthenticated, AuthError> {
        let session_id = claims.session_id().ok_or(AuthError::SessionEnded)?;
        self.limits.admit_login(client.address)?;
        let check = self.hasher.admit(deadline)?;
        let record = self.confirm_own_password(claims, password, check).await?;
        let mut authentication = Authentication::password(Utc::now());
        if self.has_second_factor(record.id).await? {
            let proof = second.ok_or_else(|| self.reauthentication_required())?;
            let (method, _) = self
                .check_second_factor(
                    record.id,
                    proof,
                    Some(Binding::Session(session_id)),
                    client,
                    deadline,
                )
                .await?;
            authentication = authentication.and(method);
        }
        if !self
            .store
            .update_session_authentication(session_id, record.id, &authentication)
            .await?
        {
            return Err(AuthError::SessionEnded);
        }
        let session = self
            .store
            .find_session(session_id)
            .await?
            .ok_or(AuthError::SessionEnded)?;
        let user = self.user_of(record).await?;
        let token = self.tokens.issue(
            user.id,
            &user.username,
            session_id,
            &authentication,
            self.sessions.refreshable_until(&session).timestamp(),
        )?;
        tracing::info!(methods = %authentication.stored_methods(), "reauthenticated");
        Ok(Reauthenticated {
            session_id,
            user,
            token,
        })
    }

    /// Removes the caller's TOTP and recovery codes, after a step-up; every
    /// other session of the account ends.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn disable_totp(
        &self,
        claims: &Claims,
        second: Option<SecondFactorProof>,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<(), AuthError> {
        let user_id = caller(claims)?;
        if !self.has_totp(user_id).await? {
            return Err(AuthError::TotpNotEnabled);
        }
        self.require_step_up(
            claims,
            user_id,
            StepUp::without_password(second),
            client,
            deadline,
        )
        .await?;
        let notices = self
            .security_notice_for(user_id, SecurityEvent::TotpDisabled, client)
            .await?;
        if !self
            .store
            .delete_second_factors(user_id, notices.as_slice())
            .await?
        {
            return Err(AuthError::TotpNotEnabled);
        }
        self.end_other_sessions(user_id, claims.session_id(), "second_factor_disabled")
            .await?;
        tracing::info!("TOTP disabled");
        Ok(())
    }

    /// Replaces the caller's recovery codes with a new set, after a
    /// step-up; every other session of the account ends.
    #[tracing::instrument(skip_all, fields(user_id = %claims.sub))]
    pub async fn regenerate_recovery_codes(
        &self,
        claims: &Claims,
        second: Option<SecondFactorProof>,
        client: &ClientInfo,
        deadline: Option<Deadline>,
    ) -> Result<Vec<RecoveryCode>, AuthError> {
        let user_id = caller(claims)?;
        if !self.has_totp(user_id).await? {
            return Err(AuthError::TotpNotEnabled);
        }
        self.require_step_up(
            claims,
            user_id,
            StepUp::without_password(second),
            client,
            deadline,
        )
        .await?;
        let (codes, records) = self.new_recovery_codes(user_id, deadline).await?;
        let notices = self
            .security_notice_for(user_id, SecurityEvent::RecoveryCodesRegenerated, client)
            .await?;
        self.store
            .replace_recovery_codes(user_id, &records, notices.as_slice())
            .await?;
        self.end_other_sessions(user_id, claims.session_id(), "recovery_codes_regenerated")
            .await?;
        tracing::info!("recovery codes regenerated");
        Ok(codes)
    }

    /// Whether the account has a second factor: a confirmed TOTP or a
    /// passkey.
    pub(super) async fn has_second_factor(&self, user_id: Uuid) -> Result<bool, AuthError> {
        Ok(self.has_totp(user_id).await? || self.has_passkey(user_id).await?)
    }

    /// Whether the account has a confirmed TOTP.
    pub(super) async fn has_totp(&self, user_id: Uuid) -> Result<bool, AuthError> {
        Ok(self
            .store
            .totp_of(user_id)
            .await?
            .is_some_and(|totp| totp.confirmed_at.is_some()))
    }

    /// Whether the caller's token comes from an authentication within
    /// `--reauthentication-max-age`.
    fn is_recent(&self, claims: &Claims) -> bool {
        let max_age = self.factors.reauthentication_max_age.as_secs();
        claims.auth_time.is_some_and(|auth_time| {
            let age = Utc::now().timestamp().saturating_sub(auth_time);
            u64::try_from(age).map_or(true, |age| age <= max_age)
        })
    }

    fn reauthentication_required(&self) -> AuthError {
        AuthError::ReauthenticationRequired {
            max_age: self.factors.reauthentication_max_age,
        }
    }

    /// Refuses unless the caller's token is recent (enrolling a factor).
    pub(super) fn require_recent_authentication(&self, claims: &Claims) -> Result<(), AuthError> {
        if self.is_recent(claims) {
            Ok(())
        } else {
            Err(self.reauthentication_required())
        }
    }
}
