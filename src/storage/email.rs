//! The EmailStore port on sea-orm: addresses and mailed tokens. Each change
//! that mails someone runs in one transaction with `outbox::queue`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, SqlErr,
};
use uuid::Uuid;

use super::database::{Database, classify};
use super::entities::{email_address, mail_token, user};
use super::outbox::queue_all;
use super::users::insert_user_row;
use crate::domain::{
    AuthError, EmailRecord, EmailStore, MailPurpose, MailTokenRecord, OutboxEntry, UserRecord,
};

impl EmailStore for Database {
    async fn email_of(&self, user_id: Uuid) -> Result<Option<EmailRecord>, AuthError> {
        let row = email_address::Entity::find_by_id(user_id)
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(row.map(email_record))
    }

    async fn insert_user_with_email(
        &self,
        user: UserRecord,
        email: &EmailRecord,
        verification: Option<(&MailTokenRecord, &[OutboxEntry])>,
    ) -> Result<(), AuthError> {
        let transaction = self.begin_write().await?;
        insert_user_row(&transaction, user).await?;
        put_email(&transaction, email).await?;
        if let Some((token, entries)) = verification {
            put_token(&transaction, token).await?;
            queue_all(&transaction, entries).await?;
        }
        transaction.commit().await.map_err(classify)
    }

    async fn replace_email(
        &self,
        email: &EmailRecord,
        token: &MailTokenRecord,
        entries: &[OutboxEntry],
    ) -> Result<(), AuthError> {
        let transaction = self.begin_write().await?;
        put_email(&transaction, email).await?;
        put_token(&transaction, token).await?;
        queue_all(&transaction, entries).await?;
        transaction.commit().await.map_err(classify)
    }

    async fn replace_mail_token(
        &self,
        token: &MailTokenRecord,
        entries: &[OutboxEntry],
    ) -> Result<(), AuthError> {
        let transaction = self.begin_write().await?;
        put_token(&transaction, token).await?;
        queue_all(&transaction, entries).await?;
        transaction.commit().await.map_err(classify)
    }

    async fn verify_email(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<EmailRecord>, AuthError> {
        let transaction = self.begin_write().await?;
        let Some(token) =
            spend_token(&transaction, token_hash, MailPurpose::VerifyEmail, now).await?
        else {
            return Ok(None);
        };
        let verified = email_address::Entity::update_many()
            .col_expr(email_address::Column::VerifiedAt, Expr::value(now))
            .col_expr(
                email_address::Column::VerifiedNormalized,
                Expr::col(email_address::Column::AddressNormalized),
            )
            .filter(email_address::Column::UserId.eq(token.user_id))
            .filter(email_address::Column::AddressNormalized.eq(&token.address))
            .exec(&transaction)
            .await;
        match verified {
            Ok(result) if result.rows_affected == 0 => return Ok(None),
            Ok(_) => {}
            Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(AuthError::EmailTaken);
            }
            Err(error) => return Err(classify(error)),
        }
        let row = email_address::Entity::find_by_id(token.user_id)
            .one(&transaction)
            .await
            .map_err(classify)?;
        transaction.commit().await.map_err(classify)?;
        Ok(row.map(email_record))
    }

    async fn verified_email(
        &self,
        address_normalized: &str,
    ) -> Result<Option<EmailRecord>, AuthError> {
        let row = email_address::Entity::find()
            .filter(email_address::Column::VerifiedNormalized.eq(address_normalized))
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(row.map(email_record))
    }

    async fn find_mail_token(
        &self,
        token_hash: &str,
        purpose: MailPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<MailTokenRecord>, AuthError> {
        let row = mail_token::Entity::find_by_id(token_hash.to_owned())
            .filter(mail_token::Column::Purpose.eq(purpose.as_str()))
            .filter(mail_token::Column::ExpiresAt.gt(now))
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(row.map(|row| MailTokenRecord {
            token_hash: row.token_hash,
            user_id: row.user_id,
            purpose,
            address_normalized: row.address,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }))
    }

    async fn reset_password(
        &self,
        token_hash: &str,
        user_id: Uuid,
        password_hash: &str,
        notices: &[OutboxEntry],
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let transaction = self.begin_write().await?;
        let spent = spend_token(&transaction, token_hash, MailPurpose::ResetPassword, now).await?;
        if spent.is_none_or(|token| token.user_id != user_id) {
            return Ok(false);
        }
        let updated = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
            .filter(user::Column::Id.eq(user_id))
            .exec(&transaction)
            .await
            .map_err(classify)?;
        if updated.rows_affected == 0 {
            return Ok(false);
        }
        queue_all(&transaction, notices).await?;
        transaction.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn delete_mail_tokens_expired_before(
        &self,
        now: DateTime<Utc>,
    ) -> Result<u64, AuthError> {
        let result = mail_token::Entity::delete_many()
            .filter(mail_token::Column::ExpiresAt.lt(now))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }
}

/// Sets or replaces a user's address, unverified.
async fn put_email(
    transaction: &DatabaseTransaction,
    email: &EmailRecord,
) -> Result<(), AuthError> {
    let row = email_address::ActiveModel {
        user_id: Set(email.user_id),
        address: Set(email.address.clone()),
        address_normalized: Set(email.address_normalized.clone()),
        verified_normalized: Set(None),
        created_at: Set(email.created_at),
        verified_at: Set(None),
    };
    email_address::Entity::insert(row)
        .on_conflict(
            OnConflict::column(email_address::Column::UserId)
                .update_columns([
                    email_address::Column::Address,
                    email_address::Column::AddressNormalized,
                    email_address::Column::VerifiedNormalized,
                    email_address::Column::CreatedAt,
                    email_address::Column::VerifiedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(transaction)
        .await
        .map_err(classify)?;
    Ok(())
}

/// Stores a token, voiding the user's previous one of its purpose (the
/// unique index allows one per user and purpose).
async fn put_token(
    transaction: &DatabaseTransaction,
    token: &MailTokenRecord,
) -> Result<(), AuthError> {
    // The account's row locked first (PostgreSQL; SQLite's transaction
    // holds the write lock already): two replacements of one account's
    // token wait for each other here, where each would otherwise delete the
    // token it saw and insert its own, and the second insert would break
    // the one-token-per-purpose index.
    user::Entity::update_many()
        .col_expr(user::Column::Id, Expr::col(user::Column::Id))
        .filter(user::Column::Id.eq(token.user_id))
        .exec(transaction)
        .await
        .map_err(classify)?;
    mail_token::Entity::delete_many()
        .filter(mail_token::Column::UserId.eq(token.user_id))
        .filter(mail_token::Column::Purpose.eq(token.purpose.as_str()))
        .exec(transaction)
        .await
        .map_err(classify)?;
    let row = mail_token::ActiveModel {
        token_hash: Set(token.token_hash.clone()),
        user_id: Set(token.user_id),
        purpose: Set(token.purpose.as_str().to_owned()),
        address: Set(token.address_normalized.clone()),
        created_at: Set(token.created_at),
        expires_at: Set(token.expires_at),
    };
    mail_token::Entity::insert(row)
        .exec_without_returning(transaction)
        .await
        .map_err(classify)?;
    Ok(())
}

/// Deletes a token of `purpose` unexpired at `now`; returns it if this call
/// did (of racing calls, exactly one).
async fn spend_token(
    transaction: &DatabaseTransaction,
    token_hash: &str,
    purpose: MailPurpose,
    now: DateTime<Utc>,
) -> Result<Option<mail_token::Model>, AuthError> {
    let Some(row) = mail_token::Entity::find_by_id(token_hash.to_owned())
        .filter(mail_token::Column::Purpose.eq(purpose.as_str()))
        .filter(mail_token::Column::ExpiresAt.gt(now))
        .one(transaction)
        .await
        .map_err(classify)?
    else {
        return Ok(None);
    };
    let deleted = mail_token::Entity::delete_by_id(token_hash.to_owned())
        .exec(transaction)
        .await
        .map_err(classify)?;
    Ok((deleted.rows_affected == 1).then_some(row))
}

/// Forgets a user's address and tokens, with the account (in its
/// transaction). Mails already queued are still sent.
pub(super) async fn delete_email_of(
    connection: &impl sea_orm::ConnectionTrait,
    user_id: Uuid,
) -> Result<(), AuthError> {
    mail_token::Entity::delete_many()
        .filter(mail_token::Column::UserId.eq(user_id))
        .exec(connection)
        .await
        .map_err(classify)?;
    email_address::Entity::delete_by_id(user_id)
        .exec(connection)
        .await
        .map_err(classify)?;
    Ok(())
}

pub(super) fn email_record(row: email_address::Model) -> EmailRecord {
    EmailRecord {
        user_id: row.user_id,
        address: row.address,
        address_normalized: row.address_normalized,
        created_at: row.created_at,
        verified_at: row.verified_at,
    }
}
