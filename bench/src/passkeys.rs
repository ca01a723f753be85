//! Accounts with a passkey, as the passkey cases need them: registered
//! right after the account (whose fresh session counts as a recent
//! authentication), with webauthn-authenticator-rs' software authenticator
//! answering as a browser on authd's default origin
//! (`http://localhost:PORT`) would; then assertions signed ahead of a turn,
//! so that the turn times FinishPasskeyLogin alone.

use anyhow::Context as _;
use authd::grpc::pb::auth_service_client::AuthServiceClient;
use authd::grpc::pb::{
    FinishPasskeyLoginRequest, FinishPasskeyRegistrationRequest, StartPasskeyLoginRequest,
    StartPasskeyRegistrationRequest,
};
use tokio::task::JoinSet;
use tonic::transport::Channel;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::clients;

/// Registrations or ceremonies prepared at once.
const PREPARING_AT_ONCE: usize = 8;

/// An account with one passkey, and the authenticator that holds its key.
pub struct WithPasskey {
    pub username: String,
    authenticator: SoftPasskey,
}

/// A FinishPasskeyLogin ready to send: a ceremony and its signed answer.
#[derive(Clone)]
pub struct SignedAssertion {
    pub ceremony_id: String,
    pub credential_json: String,
}

/// The origin authd accepts ceremonies from on a fresh start: the page it
/// serves itself on `port`, under the RP id `localhost`.
pub fn default_origin(port: u16) -> anyhow::Result<Url> {
    Ok(Url::parse(&format!("http://localhost:{port}"))?)
}

/// `count` accounts named `{prefix}-{n}`, each with a passkey, over
/// `channels`; `origin` is the page origin the authenticator answers for.
pub async fn enroll_many(
    channels: &[Channel],
    origin: &Url,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<WithPasskey>> {
    let mut enrolled = Vec::with_capacity(count);
    let mut batch = JoinSet::new();
    for n in 0..count {
        let channel = channels[n % channels.len()].clone();
        batch.spawn(enroll(channel, origin.clone(), format!("{prefix}-{n}")));
        if batch.len() >= PREPARING_AT_ONCE {
            enrolled.push(batch.join_next().await.context("a task")???);
        }
    }
    while let Some(one) = batch.join_next().await {
        enrolled.push(one??);
    }
    Ok(enrolled)
}

async fn enroll(channel: Channel, origin: Url, username: String) -> anyhow::Result<WithPasskey> {
    let token = clients::register(channel.clone(), username.clone()).await?;
    let mut client = AuthServiceClient::new(channel);
    let started = client
        .start_passkey_registration(clients::with_bearer(
            StartPasskeyRegistrationRequest {},
            &token,
        )?)
        .await?
        .into_inner();
    let options: CreationChallengeResponse = serde_json::from_value(serde_json::json!({
        "publicKey": serde_json::from_str::<serde_json::Value>(&started.options_json)?
    }))?;
    let mut authenticator = SoftPasskey::new(true);
    let credential = authenticator
        .do_registration(origin, options)
        .map_err(|error| anyhow::anyhow!("the authenticator refused to register: {error:?}"))?;
    client
        .finish_passkey_registration(clients::with_bearer(
            FinishPasskeyRegistrationRequest {
                ceremony_id: started.ceremony_id,
                credential_json: serde_json::to_string(&credential)?,
                name: "bench".into(),
            },
            &token,
        )?)
        .await?;
    Ok(WithPasskey {
        username,
        authenticator,
    })
}

/// A started sign-in for each of `accounts`, in order, answered by its
/// authenticator. Each account's signature counter moves on by one, so an
/// account appears at most once per batch sent at the same time.
pub async fn signed_assertions(
    channels: &[Channel],
    origin: &Url,
    accounts: &mut [WithPasskey],
) -> anyhow::Result<Vec<SignedAssertion>> {
    let mut signed = Vec::with_capacity(accounts.len());
    for (n, account) in accounts.iter_mut().enumerate() {
        let started = AuthServiceClient::new(channels[n % channels.len()].clone())
            .start_passkey_login(StartPasskeyLoginRequest {
                username: account.username.clone(),
            })
            .await?
            .into_inner();
        let options: RequestChallengeResponse = serde_json::from_value(serde_json::json!({
            "publicKey": serde_json::from_str::<serde_json::Value>(&started.options_json)?
        }))?;
        let assertion = account
            .authenticator
            .do_authentication(origin.clone(), options)
            .map_err(|error| anyhow::anyhow!("the authenticator refused to sign: {error:?}"))?;
        signed.push(SignedAssertion {
            ceremony_id: started.ceremony_id,
            credential_json: serde_json::to_string(&assertion)?,
        });
    }
    Ok(signed)
}

/// FinishPasskeyLogin; the new session's access token.
pub async fn finish(channel: Channel, signed: SignedAssertion) -> Result<String, String> {
    AuthServiceClient::new(channel)
        .finish_passkey_login(FinishPasskeyLoginRequest {
            ceremony_id: signed.ceremony_id,
            credential_json: signed.credential_json,
        })
        .await
        .map(|response| response.into_inner().access_token)
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
}
