//! Accounts with TOTP, as the second-factor cases need them: enrolled as a
//! user would (StartTotpEnrollment, then ConfirmTotpEnrollment with a code
//! computed from the secret authd hands out, as an authenticator app
//! does), a Login's ticket for each, and CompleteLogin with a code or a
//! recovery code.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use authd::grpc::pb::auth_service_client::AuthServiceClient;
use authd::grpc::pb::complete_login_request::Proof;
use authd::grpc::pb::{
    CompleteLoginRequest, ConfirmTotpEnrollmentRequest, LoginRequest, StartTotpEnrollmentRequest,
};
use tokio::task::JoinSet;
use tonic::Code;
use tonic::transport::Channel;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::clients::{self, PASSWORD};

/// TOTP's time step, in seconds (RFC 6238, as authd reads it).
const STEP_SECONDS: u64 = 30;

/// Enrollments or Logins at once: enough to keep the hash slots busy, few
/// enough that admission (by expected wait) refuses none.
const PREPARING_AT_ONCE: usize = 8;

/// An account with TOTP on, and what its owner's app and paper know.
pub struct Enrolled {
    pub username: String,
    totp: Totp,
    pub recovery_codes: Vec<String>,
}

impl Enrolled {
    /// The code the app shows now.
    pub fn code_now(&self) -> String {
        self.totp.generate(unix_now()).to_string()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// `count` accounts named `{prefix}-{n}`, registered and enrolled, over
/// `channels`.
pub async fn enroll_many(
    channels: &[Channel],
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<Enrolled>> {
    let mut enrolled = Vec::with_capacity(count);
    let mut batch = JoinSet::new();
    for n in 0..count {
        let channel = channels[n % channels.len()].clone();
        batch.spawn(enroll(channel, format!("{prefix}-{n}")));
        if batch.len() >= PREPARING_AT_ONCE {
            enrolled.push(batch.join_next().await.context("a task")???);
        }
    }
    while let Some(one) = batch.join_next().await {
        enrolled.push(one??);
    }
    Ok(enrolled)
}

/// Registers `username` and turns TOTP on. The confirmation uses the code
/// of the step before the current one (within authd's skew), so that the
/// account's last spent step is behind the clock and the current step's
/// code logs in at once.
async fn enroll(channel: Channel, username: String) -> anyhow::Result<Enrolled> {
    let token = clients::register(channel.clone(), username.clone()).await?;
    let mut client = AuthServiceClient::new(channel);
    let started = client
        .start_totp_enrollment(clients::with_bearer(StartTotpEnrollmentRequest {}, &token)?)
        .await?
        .into_inner();
    let secret = Secret::try_from_base32(&started.secret)
        .map_err(|error| anyhow::anyhow!("the secret is not base32: {error:?}"))?;
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(secret)
        .build()
        .map_err(|error| anyhow::anyhow!("not an RFC 6238 secret: {error:?}"))?;
    // Computed at the edge of a step, the previous step's code can reach
    // authd two steps behind: once more with the clock read again.
    let mut attempts = 0;
    let confirmed = loop {
        attempts += 1;
        let code = totp
            .generate(unix_now().saturating_sub(STEP_SECONDS))
            .to_string();
        let confirmation = client
            .confirm_totp_enrollment(clients::with_bearer(
                ConfirmTotpEnrollmentRequest { code },
                &token,
            )?)
            .await;
        match confirmation {
            Err(status) if attempts < 2 && status.code() == Code::InvalidArgument => {}
            other => break other?.into_inner(),
        }
    };
    Ok(Enrolled {
        username,
        totp,
        recovery_codes: confirmed.recovery_codes,
    })
}

/// A Login's second-factor ticket for each of `usernames`, in order.
pub async fn tickets(channels: &[Channel], usernames: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut tickets = vec![String::new(); usernames.len()];
    let mut batch = JoinSet::new();
    for (n, username) in usernames.iter().enumerate() {
        let channel = channels[n % channels.len()].clone();
        let username = (*username).to_owned();
        batch.spawn(async move { (n, ticket(channel, username).await) });
        if batch.len() >= PREPARING_AT_ONCE {
            let (n, ticket) = batch.join_next().await.context("a task")??;
            tickets[n] = ticket?;
        }
    }
    while let Some(done) = batch.join_next().await {
        let (n, ticket) = done?;
        tickets[n] = ticket?;
    }
    Ok(tickets)
}

async fn ticket(channel: Channel, username: String) -> anyhow::Result<String> {
    let response = AuthServiceClient::new(channel)
        .login(LoginRequest {
            username: username.clone(),
            password: PASSWORD.into(),
        })
        .await?
        .into_inner();
    response
        .mfa_required
        .map(|required| required.ticket)
        .with_context(|| format!("Login of {username} asked for no second factor"))
}

/// CompleteLogin with `proof`; the new session's access token.
pub async fn complete(channel: Channel, ticket: String, proof: Proof) -> Result<String, String> {
    AuthServiceClient::new(channel)
        .complete_login(CompleteLoginRequest {
            ticket,
            proof: Some(proof),
        })
        .await
        .map(|response| response.into_inner().access_token)
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
}

/// The claims of a JWT's payload, by name, with `amr` and `acr` valued: what
/// makes up its size.
pub fn claims(token: &str) -> anyhow::Result<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).context("not a JWT")?;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
    let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&payload)?;
    Ok(claims
        .iter()
        .map(|(name, value)| match name.as_str() {
            "amr" | "acr" => format!("{name} {value}"),
            _ => name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", "))
}
