//! `auth.v1.AuthService`: converts messages, calls the domain, converts back.

use std::sync::Arc;

use prost_types::Timestamp;
use tonic::{Request, Response, Status};

use super::bearer::Authentication;
use super::pb::{
    self, ChangePasswordRequest, ChangePasswordResponse, CompleteLoginRequest,
    CompleteLoginResponse, ConfirmTotpEnrollmentRequest, ConfirmTotpEnrollmentResponse,
    DeleteAccountRequest, DeleteAccountResponse, DisableTotpRequest, DisableTotpResponse,
    FinishPasskeyLoginRequest, FinishPasskeyLoginResponse, FinishPasskeyRegistrationRequest,
    FinishPasskeyRegistrationResponse, GetJwksRequest, GetJwksResponse, GetMfaStatusRequest,
    GetMfaStatusResponse, ListPasskeysRequest, ListPasskeysResponse, ListSessionsRequest,
    ListSessionsResponse, LoginRequest, LoginResponse, LogoutAllRequest, LogoutAllResponse,
    LogoutRequest, LogoutResponse, ReauthenticateRequest, ReauthenticateResponse, RefreshRequest,
    RefreshResponse, RegenerateRecoveryCodesRequest, RegenerateRecoveryCodesResponse,
    RegisterRequest, RegisterResponse, RegisterWithPasskeyRequest, RegisterWithPasskeyResponse,
    RemovePasskeyRequest, RemovePasskeyResponse, RenamePasskeyRequest, RenamePasskeyResponse,
    ResendEmailVerificationRequest, ResendEmailVerificationResponse, RevokeSessionRequest,
    RevokeSessionResponse, SetEmailRequest, SetEmailResponse, SetPasswordRequest,
    SetPasswordResponse, StartPasskeyLoginRequest, StartPasskeyLoginResponse,
    StartPasskeyReauthenticationRequest, StartPasskeyReauthenticationResponse,
    StartPasskeyRegistrationRequest, StartPasskeyRegistrationResponse, StartPasskeySignupRequest,
    StartPasskeySignupResponse, StartTotpEnrollmentRequest, StartTotpEnrollmentResponse,
    VerifyEmailRequest, VerifyEmailResponse, VerifyRequest, VerifyResponse,
    auth_service_server::AuthService, change_password_request, complete_login_request,
    delete_account_request, disable_totp_request, reauthenticate_request,
    regenerate_recovery_codes_request, remove_passkey_request, set_email_request,
};
use super::pb::{
    RequestPasswordResetRequest, RequestPasswordResetResponse, ResetPasswordRequest,
    ResetPasswordResponse, StartPasskeyPasswordResetRequest, StartPasskeyPasswordResetResponse,
    reset_password_request,
};
use crate::deadline::Deadline;
use crate::domain::{
    AuthError, Authenticator, ClientInfo, Credentials, EmailAddress, LoginOutcome, PasskeySummary,
    Password, RecoveryCode, ResetLookup, SecondFactorFields, SecondFactorProof, Session,
    SessionSummary, Store, TotpCode, User,
};
use crate::http::client_address::ClientAddressResolver;

const TOKEN_TYPE: &str = "Bearer";

/// The gRPC face of the [`Authenticator`].
pub struct AuthGrpc<S> {
    auth: Arc<Authenticator<S>>,
    addresses: ClientAddressResolver,
}

impl<S> AuthGrpc<S> {
    pub fn new(auth: Arc<Authenticator<S>>, addresses: ClientAddressResolver) -> Self {
        Self { auth, addresses }
    }

    /// Who is calling: the address rate limits count against, and the
    /// user agent a new session records.
    fn client<T>(&self, request: &Request<T>) -> ClientInfo {
        let address = self
            .addresses
            .resolve(request.metadata().as_ref(), request.remote_addr());
        let user_agent = request
            .metadata()
            .get("user-agent")
            .and_then(|value| value.to_str().ok());
        ClientInfo::new(address, user_agent)
    }
}

/// The client's deadline, as the deadline layer found it in `grpc-timeout`.
fn client_deadline<T>(request: &Request<T>) -> Option<Deadline> {
    request.extensions().get::<Deadline>().copied()
}

#[tonic::async_trait]
impl<S: Store> AuthService for AuthGrpc<S> {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let client = self.client(&request);
        let deadline = client_deadline(&request);
        let RegisterRequest {
            username,
            password,
            email,
        } = request.into_inner();
        let (credentials, email) = Credentials::for_registration_with_email(
            &username,
            password,
            (!email.is_empty()).then_some(email.as_str()),
        )?;
        let session = self
            .auth
            .register(credentials, email, &client, deadline)
            .await?;
        Ok(Response::new(session.into()))
    }

    async fn login(
        &self,
        request: Request<LoginRequest>,
    ) -> Result<Response<LoginResponse>, Status> {
        let client = self.client(&request);
        let deadline = client_deadline(&request);
        let LoginRequest { username, password } = request.into_inner();
        let credentials = Credentials::for_login(&username, password)?;
        let outcome = self.auth.login(credentials, &client, deadline).await?;
        Ok(Response::new(match outcome {
            LoginOutcome::Session(session) => session.into(),
            LoginOutcome::SecondFactorRequired(challenge) => LoginResponse {
                mfa_required: Some(pb::MfaRequired {
                    ticket: challenge.ticket,
                    methods: challenge.methods.iter().map(|m| (*m).to_owned()).collect(),
                    expires_in: challenge.expires_in,
                    passkey_options_json: challenge.passkey_options_json.unwrap_or_default(),
                }),
                ..LoginResponse::default()
            },
        }))
    }

    async fn complete_login(
        &self,
        request: Request<CompleteLoginRequest>,
    ) -> Result<Response<CompleteLoginResponse>, Status> {
        let client = self.client(&request);
        let deadline = client_deadline(&request);
        let CompleteLoginRequest { ticket, proof } = request.into_inner();
        let proof = SecondFactorProof::parse(fields(proof.as_ref()))?;
        let completed = self
            .auth
            .complete_login(&ticket, proof, &client, deadline)
            .await?;
        Ok(Response::new(CompleteLoginResponse {
            recovery_codes_left: completed.recovery_codes_left,
            ..completed.session.into()
        }))
    }

    async fn start_totp_enrollment(
        &self,
        request: Request<StartTotpEnrollmentRequest>,
    ) -> Result<Response<StartTotpEnrollmentResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let enrollment = self.auth.start_totp_enrollment(&claims).await?;
        Ok(Response::new(StartTotpEnrollmentResponse {
            qr_svg: enrollment.qr_svg.to_string(),
            secret: enrollment.secret.to_string(),
            otpauth_uri: enrollment.otpauth_uri.to_string(),
        }))
    }

    async fn confirm_totp_enrollment(
        &self,
        request: Request<ConfirmTotpEnrollmentRequest>,
    ) -> Result<Response<ConfirmTotpEnrollmentResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let deadline = client_deadline(&request);
        let code = TotpCode::parse(&request.get_ref().code)?;
        let codes = self
            .auth
            .confirm_totp_enrollment(&claims, code, &self.client(&request), deadline)
            .await?;
        Ok(Response::new(ConfirmTotpEnrollmentResponse {
            recovery_codes: codes.iter().map(RecoveryCode::display).collect(),
        }))
    }

    async fn disable_totp(
        &self,
        request: Request<DisableTotpRequest>,
    ) -> Result<Response<DisableTotpResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let deadline = client_deadline(&request);
        let second = second_factor(request.get_ref().second.as_ref())?;
        self.auth
            .disable_totp(&claims, second, &self.client(&request), deadline)
            .await?;
        Ok(Response::new(DisableTotpResponse {}))
    }

    async fn regenerate_recovery_codes(
        &self,
        request: Request<RegenerateRecoveryCodesRequest>,
    ) -> Result<Response<RegenerateRecoveryCodesResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let deadline = client_deadline(&request);
        let second = second_factor(request.get_ref().second.as_ref())?;
        let codes = self
            .auth
            .regenerate_recovery_codes(&claims, second, &self.client(&request), deadline)
            .await?;
        Ok(Response::new(RegenerateRecoveryCodesResponse {
            recovery_codes: codes.iter().map(RecoveryCode::display).collect(),
        }))
    }

    async fn reauthenticate(
        &self,
        request: Request<ReauthenticateRequest>,
    ) -> Result<Response<ReauthenticateResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let client = self.client(&request);
        let deadline = client_deadline(&request);
        let ReauthenticateRequest { password, second } = request.into_inner();
        let password = Password::for_confirmation(password)?;
        let second = second_factor(second.as_ref())?;
        let renewed = self
            .auth
            .reauthenticate(&claims, password, second, &client, deadline)
            .await?;
        Ok(Response::new(ReauthenticateResponse {
            access_token: renewed.token.token,
            token_type: TOKEN_TYPE.into(),
            expires_in: renewed.token.expires_in,
            user: Some(renewed.user.into()),
            session_id: renewed.session_id.to_string(),
        }))
    }

    async fn start_passkey_registration(
        &self,
        request: Request<StartPasskeyRegistrationRequest>,
    ) -> Result<Response<StartPasskeyRegistrationResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let ceremony = self.auth.start_passkey_registration(&claims).await?;
        Ok(Response::new(StartPasskeyRegistrationResponse {
            ceremony_id: ceremony.ceremony_id.to_string(),
            options_json: ceremony.options_json,
        }))
    }

    async fn finish_passkey_registration(
        &self,
        request: Request<FinishPasskeyRegistrationRequest>,
    ) -> Result<Response<FinishPasskeyRegistrationResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let client = self.client(&request);
        let FinishPasskeyRegistrationRequest {
            ceremony_id,
            credential_json,
            name,
        } = request.into_inner();
        let passkey = self
            .auth
            .finish_passkey_registration(&claims, &ceremony_id, &credential_json, &name, &client)
            .await?;
        Ok(Response::new(FinishPasskeyRegistrationResponse {
            passkey: Some(passkey.into()),
        }))
    }

    async fn list_passkeys(
        &self,
        request: Request<ListPasskeysRequest>,
    ) -> Result<Response<ListPasskeysResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let passkeys = self.auth.list_passkeys(&claims).await?;
        Ok(Response::new(ListPasskeysResponse {
            passkeys: passkeys.into_iter().map(pb::Passkey::from).collect(),
        }))
    }

    async fn rename_passkey(
        &self,
        request: Request<RenamePasskeyRequest>,
    ) -> Result<Response<RenamePasskeyResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let RenamePasskeyRequest { passkey_id, name } = request.get_ref();
        self.auth.rename_passkey(&claims, passkey_id, name).await?;
        Ok(Response::new(RenamePasskeyResponse {}))
    }

    async fn remove_passkey(
        &self,
        request: Request<RemovePasskeyRequest>,
    ) -> Result<Response<RemovePasskeyResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let deadline = client_deadline(&request);
        let RemovePasskeyRequest { passkey_id, second } = request.get_ref();
        let second = second_factor(second.as_ref())?;
        self.auth
            .remove_passkey(
                &claims,
                passkey_id,
                second,
                &self.client(&request),
                deadline,
            )
            .await?;
        Ok(Response::new(RemovePasskeyResponse {}))
    }

    async fn start_passkey_reauthentication(
        &self,
        request: Request<StartPasskeyReauthenticationRequest>,
    ) -> Result<Response<StartPasskeyReauthenticationResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let options_json = self.auth.start_passkey_reauthentication(&claims).await?;
        Ok(Response::new(StartPasskeyReauthenticationResponse {
            options_json,
        }))
    }

    async fn start_passkey_signup(
        &self,
        request: Request<StartPasskeySignupRequest>,
    ) -> Result<Response<StartPasskeySignupResponse>, Status> {
        let client = self.client(&request);
        let ceremony = self
            .auth
            .start_passkey_signup(&request.get_ref().username, &client)
            .await?;
        Ok(Response::new(StartPasskeySignupResponse {
            ceremony_id: ceremony.ceremony_id.to_string(),
            options_json: ceremony.options_json,
        }))
    }

    async fn register_with_passkey(
        &self,
        request: Request<RegisterWithPasskeyRequest>,
    ) -> Result<Response<RegisterWithPasskeyResponse>, Status> {
        let client = self.client(&request);
        let RegisterWithPasskeyRequest {
            ceremony_id,
            credential_json,
            name,
        } = request.get_ref();
        let session = self
            .auth
            .register_with_passkey(ceremony_id, credential_json, name, &client)
            .await?;
        Ok(Response::new(session.into()))
    }

    async fn set_password(
        &self,
        request: Request<SetPasswordRequest>,
    ) -> Result<Response<SetPasswordResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let deadline = client_deadline(&request);
        let client = self.client(&request);
        let new = Password::for_setting(request.into_inner().new_password)?;
        self.auth
            .set_password(&claims, new, &client, deadline)
            .await?;
        Ok(Response::new(SetPasswordResponse {}))
    }

    async fn start_passkey_login(
        &self,
        request: Request<StartPasskeyLoginRequest>,
    ) -> Result<Response<StartPasskeyLoginResponse>, Status> {
        let client = self.client(&request);
        let ceremony = self
            .auth
            .start_passkey_login(&request.get_ref().username, &client)
            .await?;
        Ok(Response::new(StartPasskeyLoginResponse {
            ceremony_id: ceremony.ceremony_id.to_string(),
            options_json: ceremony.options_json,
        }))
    }

    async fn finish_passkey_login(
        &self,
        request: Request<FinishPasskeyLoginRequest>,
    ) -> Result<Response<FinishPasskeyLoginResponse>, Status> {
        let client = self.client(&request);
        let FinishPasskeyLoginRequest {
            ceremony_id,
            credential_json,
        } = request.get_ref();
        let session = self
            .auth
            .finish_passkey_login(ceremony_id, credential_json, &client)
            .await?;
        Ok(Response::new(session.into()))
    }

    async fn set_email(
        &self,
        request: Request<SetEmailRequest>,
    ) -> Result<Response<SetEmailResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let deadline = client_deadline(&request);
        let SetEmailRequest { email, second } = request.get_ref();
        let email = EmailAddress::parse(email)
            .map_err(|violation| AuthError::InvalidInput(vec![violation]))?;
        let second = second_factor(second.as_ref())?;
        let user = self
            .auth
            .set_email(&claims, email, second, &self.client(&request), deadline)
            .await?;
        Ok(Response::new(SetEmailResponse {
            user: Some(user.into()),
        }))
    }

    async fn verify_email(
        &self,
        request: Request<VerifyEmailRequest>,
    ) -> Result<Response<VerifyEmailResponse>, Status> {
        let user = self.auth.verify_email(&request.get_ref().token).await?;
        Ok(Response::new(VerifyEmailResponse {
            user: Some(user.into()),
        }))
    }

    async fn resend_email_verification(
        &self,
        request: Request<ResendEmailVerificationRequest>,
    ) -> Result<Response<ResendEmailVerificationResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        self.auth.resend_email_verification(&claims).await?;
        Ok(Response::new(ResendEmailVerificationResponse {}))
    }

    async fn request_password_reset(
        &self,
        request: Request<RequestPasswordResetRequest>,
    ) -> Result<Response<RequestPasswordResetResponse>, Status> {
        let client = self.client(&request);
        let lookup = ResetLookup::parse(&request.get_ref().username_or_email)?;
        self.auth.request_password_reset(lookup, &client)?;
        Ok(Response::new(RequestPasswordResetResponse {}))
    }

    async fn reset_password(
        &self,
        request: Request<ResetPasswordRequest>,
    ) -> Result<Response<ResetPasswordResponse>, Status> {
        let client = self.client(&request);
        let deadline = client_deadline(&request);
        let ResetPasswordRequest {
            token,
            new_password,
            second,
        } = request.into_inner();
        let second = second_factor(second.as_ref())?;
        let new = Password::for_setting(new_password)?;
        let completed = self
            .auth
            .reset_password(&token, new, second, &client, deadline)
            .await?;
        Ok(Response::new(ResetPasswordResponse {
            recovery_codes_left: completed.recovery_codes_left,
            ..completed.session.into()
        }))
    }

    async fn start_passkey_password_reset(
        &self,
        request: Request<StartPasskeyPasswordResetRequest>,
    ) -> Result<Response<StartPasskeyPasswordResetResponse>, Status> {
        let passkey_options_json = self
            .auth
            .start_passkey_password_reset(&request.get_ref().token)
            .await?;
        Ok(Response::new(StartPasskeyPasswordResetResponse {
            passkey_options_json,
        }))
    }

    async fn get_mfa_status(
        &self,
        request: Request<GetMfaStatusRequest>,
    ) -> Result<Response<GetMfaStatusResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let status = self.auth.second_factor_status(&claims).await?;
        Ok(Response::new(GetMfaStatusResponse {
            totp_enabled: status.totp_enabled,
            recovery_codes_left: status.recovery_codes_left,
            totp_pending: status.totp_pending,
        }))
    }

    async fn logout(
        &self,
        request: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        self.auth.logout(&claims).await?;
        Ok(Response::new(LogoutResponse {}))
    }

    async fn logout_all(
        &self,
        request: Request<LogoutAllRequest>,
    ) -> Result<Response<LogoutAllResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        self.auth.logout_all(&claims).await?;
        Ok(Response::new(LogoutAllResponse {}))
    }

    async fn get_jwks(
        &self,
        _request: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        let keys = self
            .auth
            .tokens()
            .published_keys()
            .into_iter()
            .map(|key| pb::Jwk {
                kty: key.kty,
                crv: key.crv,
                x: key.x,
                kid: key.kid,
                alg: key.alg,
                r#use: key.key_use,
            })
            .collect();
        Ok(Response::new(GetJwksResponse { keys }))
    }

    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let claims = self.auth.verify(&request.get_ref().access_token).await?;
        Ok(Response::new(VerifyResponse {
            // From the token alone: its address is no claim.
            user: Some(pb::User {
                id: claims.sub.clone(),
                username: claims.username.clone(),
                email: String::new(),
                email_verified: false,
            }),
            issued_at: Some(timestamp(claims.iat)),
            expires_at: Some(timestamp(claims.exp)),
            token_id: claims.jti.clone(),
            session_id: claims.sid.clone().unwrap_or_default(),
            amr: claims.amr.clone(),
            auth_time: claims.auth_time.map(timestamp),
            assurance_level: claims.assurance_level(),
        }))
    }

    async fn refresh(
        &self,
        request: Request<RefreshRequest>,
    ) -> Result<Response<RefreshResponse>, Status> {
        let session = self.auth.refresh(&request.get_ref().refresh_token).await?;
        Ok(Response::new(session.into()))
    }

    async fn change_password(
        &self,
        request: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let client = self.client(&request);
        let deadline = client_deadline(&request);
        let ChangePasswordRequest {
            current_password,
            new_password,
            second,
        } = request.into_inner();
        let (current, new) = Password::for_change(current_password, new_password)?;
        let second = second_factor(second.as_ref())?;
        let session = self
            .auth
            .change_password(&claims, current, new, second, &client, deadline)
            .await?;
        Ok(Response::new(session.into()))
    }

    async fn delete_account(
        &self,
        request: Request<DeleteAccountRequest>,
    ) -> Result<Response<DeleteAccountResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let client = self.client(&request);
        let deadline = client_deadline(&request);
        let DeleteAccountRequest { password, second } = request.into_inner();
        let password = Password::for_confirmation(password)?;
        let second = second_factor(second.as_ref())?;
        self.auth
            .delete_account(&claims, password, second, &client, deadline)
            .await?;
        Ok(Response::new(DeleteAccountResponse {}))
    }

    async fn list_sessions(
        &self,
        request: Request<ListSessionsRequest>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        let sessions = self.auth.list_sessions(&claims).await?;
        Ok(Response::new(ListSessionsResponse {
            sessions: sessions.into_iter().map(pb::Session::from).collect(),
        }))
    }

    async fn revoke_session(
        &self,
        request: Request<RevokeSessionRequest>,
    ) -> Result<Response<RevokeSessionResponse>, Status> {
        let claims = Authentication::require(&request, self.auth.tokens()).await?;
        self.auth
            .revoke_session(&claims, &request.get_ref().session_id)
            .await?;
        Ok(Response::new(RevokeSessionResponse {}))
    }
}

/// A request's `second` (or `proof`) oneof, as the domain reads it.
trait SecondFactorOneof {
    fn fields(&self) -> SecondFactorFields<'_>;
}

macro_rules! second_factor_oneof {
    ($($oneof:ty),+) => {$(
        impl SecondFactorOneof for $oneof {
            fn fields(&self) -> SecondFactorFields<'_> {
                match self {
                    Self::TotpCode(code) => SecondFactorFields {
                        totp_code: Some(code),
                        ..SecondFactorFields::default()
                    },
                    Self::RecoveryCode(code) => SecondFactorFields {
                        recovery_code: Some(code),
                        ..SecondFactorFields::default()
                    },
                    Self::PasskeyCredentialJson(json) => SecondFactorFields {
                        passkey_credential_json: Some(json),
                        ..SecondFactorFields::default()
                    },
                }
            }
        }
    )+};
}

second_factor_oneof!(
    complete_login_request::Proof,
    change_password_request::Second,
    delete_account_request::Second,
    disable_totp_request::Second,
    regenerate_recovery_codes_request::Second,
    reauthenticate_request::Second,
    remove_passkey_request::Second,
    set_email_request::Second,
    reset_password_request::Second
);

fn fields(oneof: Option<&impl SecondFactorOneof>) -> SecondFactorFields<'_> {
    oneof.map(SecondFactorOneof::fields).unwrap_or_default()
}

/// An optional second factor from a step-up request.
fn second_factor(
    oneof: Option<&impl SecondFactorOneof>,
) -> Result<Option<SecondFactorProof>, AuthError> {
    SecondFactorProof::parse_optional(fields(oneof))
}

/// Every response that hands out a session's tokens has the same fields.
macro_rules! from_session {
    ($($response:ty),+) => {$(
        impl From<Session> for $response {
            // Some of these responses have more fields (left empty here).
            #[allow(clippy::needless_update)]
            fn from(session: Session) -> Self {
                let Session { id, user, token, refresh } = session;
                Self {
                    access_token: token.token,
                    token_type: TOKEN_TYPE.into(),
                    expires_in: token.expires_in,
                    user: Some(user.into()),
                    refresh_token: refresh.token,
                    refresh_expires_in: refresh.expires_in,
                    session_id: id.to_string(),
                    ..Self::default()
                }
            }
        }
    )+};
}

from_session!(
    RegisterResponse,
    LoginResponse,
    CompleteLoginResponse,
    ResetPasswordResponse,
    RefreshResponse,
    ChangePasswordResponse,
    FinishPasskeyLoginResponse,
    RegisterWithPasskeyResponse
);

impl From<SessionSummary> for pb::Session {
    fn from(session: SessionSummary) -> Self {
        Self {
            id: session.id.to_string(),
            created_at: Some(at(session.created_at)),
            last_used_at: Some(at(session.last_used_at)),
            expires_at: Some(at(session.expires_at)),
            current: session.current,
            client_address: session.client_address,
            user_agent: session.user_agent,
            amr: session.amr,
            assurance_level: session.assurance_level,
        }
    }
}

impl From<PasskeySummary> for pb::Passkey {
    fn from(passkey: PasskeySummary) -> Self {
        Self {
            id: passkey.id.to_string(),
            name: passkey.name,
            created_at: Some(at(passkey.created_at)),
            last_used_at: passkey.last_used_at.map(at),
            backed_up: passkey.backed_up,
        }
    }
}

/// A point in time to the nanosecond, as the messages carry it.
fn at(time: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

impl From<User> for pb::User {
    fn from(user: User) -> Self {
        Self {
            id: user.id.to_string(),
            username: user.username,
            email: user.email.unwrap_or_default(),
            email_verified: user.email_verified,
        }
    }
}

fn timestamp(unix_seconds: i64) -> Timestamp {
    Timestamp {
        seconds: unix_seconds,
        nanos: 0,
    }
}
