//! The PasskeyStore port on sea-orm: passkeys, user handles and ceremonies.
//! A ceremony is spent by one DELETE and a use recorded by one conditional
//! UPDATE, whose row counts say whether this call won.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Condition, DeleteStatement, Expr, ExprTrait as _, OnConflict, Query, UpdateStatement,
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult as _,
    PaginatorTrait as _, QueryFilter, QueryOrder, QueryTrait as _, SqlErr,
};
use uuid::Uuid;

use super::database::{Database, classify};
use super::entities::{passkey, passkey_ceremony, passkey_user_handle, user};
use super::outbox::queue_all;
use super::users::{insert_user_row, select_prefixed};
use crate::domain::{
    AuthError, CeremonyKind, CeremonyRecord, OutboxEntry, PasskeyRecord, PasskeyRemoval,
    PasskeyStore, PasskeyUse, UserRecord,
};

impl PasskeyStore for Database {
    async fn passkey_user_handle(&self, user_id: Uuid, candidate: Uuid) -> Result<Uuid, AuthError> {
        passkey_user_handle::Entity::insert(passkey_user_handle::ActiveModel {
            user_id: Set(user_id),
            handle: Set(candidate),
        })
        .on_conflict(
            OnConflict::column(passkey_user_handle::Column::UserId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.connection)
        .await
        .map_err(classify)?;
        let row = passkey_user_handle::Entity::find_by_id(user_id)
            .one(&self.connection)
            .await
            .map_err(classify)?;
        row.map(|row| row.handle)
            .ok_or_else(|| AuthError::internal("the passkey user handle just stored is gone"))
    }

    async fn user_of_passkey_handle(&self, handle: Uuid) -> Result<Option<Uuid>, AuthError> {
        let row = passkey_user_handle::Entity::find()
            .filter(passkey_user_handle::Column::Handle.eq(handle))
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(row.map(|row| row.user_id))
    }

    async fn insert_passkey(
        &self,
        record: &PasskeyRecord,
        notices: &[OutboxEntry],
    ) -> Result<bool, AuthError> {
        if notices.is_empty() {
            return insert_passkey_row(&self.connection, record).await;
        }
        let transaction = self.begin_write().await?;
        if !insert_passkey_row(&transaction, record).await? {
            return Ok(false);
        }
        queue_all(&transaction, notices).await?;
        transaction.commit().await.map_err(classify)?;
        Ok(true)
    }

    async fn passkeys_of(&self, user_id: Uuid) -> Result<Vec<PasskeyRecord>, AuthError> {
        let rows = passkey::Entity::find()
            .filter(passkey::Column::UserId.eq(user_id))
            .order_by_asc(passkey::Column::CreatedAt)
            .order_by_asc(passkey::Column::Id)
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows.into_iter().map(passkey_record).collect())
    }

    async fn passkey_by_credential_id(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRecord>, AuthError> {
        let row = passkey::Entity::find()
            .filter(passkey::Column::CredentialId.eq(credential_id))
            .one(&self.connection)
            .await
            .map_err(classify)?;
        Ok(row.map(passkey_record))
    }

    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> Result<bool, AuthError> {
        let result = passkey::Entity::update_many()
            .col_expr(passkey::Column::Name, Expr::value(name))
            .filter(passkey::Column::Id.eq(id))
            .filter(passkey::Column::UserId.eq(user_id))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected == 1)
    }

    async fn delete_passkey(
        &self,
        user_id: Uuid,
        id: Uuid,
        notices: &[OutboxEntry],
    ) -> Result<PasskeyRemoval, AuthError> {
        let transaction = self.begin_write().await?;
        // A write to the account's row first, so that removals for one
        // account wait here for each other and each counts what the other
        // left: PostgreSQL locks the row; SQLite takes its write lock before
        // this transaction has read anything (a read first would pin a
        // snapshot that a racing commit makes stale, and fail).
        user::Entity::update_many()
            .col_expr(user::Column::Id, Expr::col(user::Column::Id))
            .filter(user::Column::Id.eq(user_id))
            .exec(&transaction)
            .await
            .map_err(classify)?;
        let account = user::Entity::find_by_id(user_id)
            .one(&transaction)
            .await
            .map_err(classify)?;
        let deleted = passkey::Entity::delete_many()
            .filter(passkey::Column::Id.eq(id))
            .filter(passkey::Column::UserId.eq(user_id))
            .exec(&transaction)
            .await
            .map_err(classify)?;
        if deleted.rows_affected != 1 {
            return Ok(PasskeyRemoval::NotFound);
        }
        if account.is_some_and(|account| account.password_hash.is_none()) {
            let left = passkey::Entity::find()
                .filter(passkey::Column::UserId.eq(user_id))
                .count(&transaction)
                .await
                .map_err(classify)?;
            if left == 0 {
                // Dropped uncommitted: the passkey stays.
                return Ok(PasskeyRemoval::LastSignInMethod);
            }
        }
        queue_all(&transaction, notices).await?;
        transaction.commit().await.map_err(classify)?;
        Ok(PasskeyRemoval::Removed)
    }

    async fn insert_passkey_account(
        &self,
        user: UserRecord,
        user_handle: Uuid,
        passkey: &PasskeyRecord,
    ) -> Result<(), AuthError> {
        let transaction = self.begin_write().await?;
        insert_user_row(&transaction, user).await?;
        passkey_user_handle::Entity::insert(passkey_user_handle::ActiveModel {
            user_id: Set(passkey.user_id),
            handle: Set(user_handle),
        })
        .exec_without_returning(&transaction)
        .await
        .map_err(classify)?;
        if !insert_passkey_row(&transaction, passkey).await? {
            return Err(AuthError::PasskeyAlreadyRegistered);
        }
        transaction.commit().await.map_err(classify)
    }

    async fn delete_passkeys_of(&self, user_id: Uuid) -> Result<u64, AuthError> {
        let transaction = self.begin_write().await?;
        passkey_ceremony::Entity::delete_many()
            .filter(passkey_ceremony::Column::UserId.eq(user_id))
            .exec(&transaction)
            .await
            .map_err(classify)?;
        let deleted = passkey::Entity::delete_many()
            .filter(passkey::Column::UserId.eq(user_id))
            .exec(&transaction)
            .await
            .map_err(classify)?;
        transaction.commit().await.map_err(classify)?;
        Ok(deleted.rows_affected)
    }

    async fn record_passkey_use(&self, used: &PasskeyUse) -> Result<bool, AuthError> {
        record_use(&self.connection, used).await
    }

    async fn insert_passkey_ceremony(&self, ceremony: &CeremonyRecord) -> Result<(), AuthError> {
        passkey_ceremony::Entity::insert(passkey_ceremony::ActiveModel {
            id: Set(ceremony.id),
            kind: Set(ceremony.kind.as_str().to_owned()),
            user_id: Set(ceremony.user_id),
            state: Set(ceremony.state.clone()),
            expires_at: Set(ceremony.expires_at),
        })
        .on_conflict(
            OnConflict::column(passkey_ceremony::Column::Id)
                .update_columns([
                    passkey_ceremony::Column::Kind,
                    passkey_ceremony::Column::UserId,
                    passkey_ceremony::Column::State,
                    passkey_ceremony::Column::ExpiresAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.connection)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn find_sign_in_ceremony(
        &self,
        id: Uuid,
        kind: CeremonyKind,
        now: DateTime<Utc>,
        credential_id: &str,
    ) -> Result<Option<(CeremonyRecord, Option<PasskeyRecord>)>, AuthError> {
        let mut query = Query::select();
        select_prefixed::<passkey_ceremony::Entity>(&mut query, "c_");
        select_prefixed::<passkey::Entity>(&mut query, "p_");
        query
            .from(passkey_ceremony::Entity)
            .left_join(
                passkey::Entity,
                Expr::col((passkey::Entity, passkey::Column::CredentialId)).eq(credential_id),
            )
            .cond_where(ceremony_unexpired(id, kind, now));
        let Some(row) = self.connection.query_one(&query).await.map_err(classify)? else {
            return Ok(None);
        };
        let ceremony = passkey_ceremony::Model::from_query_result(&row, "c_").map_err(classify)?;
        let passkey = passkey::Model::from_query_result_optional(&row, "p_").map_err(classify)?;
        Ok(Some((
            ceremony_record(ceremony, kind),
            passkey.map(passkey_record),
        )))
    }

    async fn take_passkey_ceremony(
        &self,
        id: Uuid,
        kind: CeremonyKind,
        now: DateTime<Utc>,
    ) -> Result<Option<CeremonyRecord>, AuthError> {
        let Some(row) = passkey_ceremony::Entity::find()
            .filter(ceremony_unexpired(id, kind, now))
            .one(&self.connection)
            .await
            .map_err(classify)?
        else {
            return Ok(None);
        };
        // The read found it; only the call whose DELETE removes it spends it.
        if !delete_ceremony(&self.connection, id, kind).await? {
            return Ok(None);
        }
        Ok(Some(ceremony_record(row, kind)))
    }

    async fn delete_passkey_ceremonies_expired_before(
        &self,
        now: DateTime<Utc>,
    ) -> Result<u64, AuthError> {
        let result = passkey_ceremony::Entity::delete_many()
            .filter(passkey_ceremony::Column::ExpiresAt.lt(now))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }
}

/// Inserts a passkey on `connection` (the pool or a transaction); false
/// when its credential id is registered already.
async fn insert_passkey_row(
    connection: &impl ConnectionTrait,
    record: &PasskeyRecord,
) -> Result<bool, AuthError> {
    let row = passkey::ActiveModel {
        id: Set(record.id),
        user_id: Set(record.user_id),
        credential_id: Set(record.credential_id.clone()),
        credential: Set(record.credential.clone()),
        name: Set(record.name.clone()),
        created_at: Set(record.created_at),
        last_used_at: Set(record.last_used_at),
        backed_up: Set(record.backed_up),
        sign_count: Set(record.sign_count),
    };
    match passkey::Entity::insert(row)
        .exec_without_returning(connection)
        .await
    {
        Ok(_) => Ok(true),
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Ok(false)
        }
        Err(error) => Err(classify(error)),
    }
}

fn passkey_record(row: passkey::Model) -> PasskeyRecord {
    PasskeyRecord {
        id: row.id,
        user_id: row.user_id,
        credential_id: row.credential_id,
        credential: row.credential,
        name: row.name,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        backed_up: row.backed_up,
        sign_count: row.sign_count,
    }
}

/// The ceremony `id` if it is of `kind` and unexpired at `now`.
fn ceremony_unexpired(id: Uuid, kind: CeremonyKind, now: DateTime<Utc>) -> Condition {
    let column = |column| Expr::col((passkey_ceremony::Entity, column));
    Condition::all()
        .add(column(passkey_ceremony::Column::Id).eq(id))
        .add(column(passkey_ceremony::Column::Kind).eq(kind.as_str()))
        .add(column(passkey_ceremony::Column::ExpiresAt).gt(now))
}

fn ceremony_record(row: passkey_ceremony::Model, kind: CeremonyKind) -> CeremonyRecord {
    CeremonyRecord {
        id: row.id,
        kind,
        user_id: row.user_id,
        state: row.state,
        expires_at: row.expires_at,
    }
}

/// Records a passkey's use if its counter is still the one it was checked
/// against, on `connection`; whether it was.
pub(super) async fn record_use(
    connection: &impl ConnectionTrait,
    used: &PasskeyUse,
) -> Result<bool, AuthError> {
    let result = connection
        .execute(&use_recording(used))
        .await
        .map_err(classify)?;
    Ok(result.rows_affected() == 1)
}

/// The conditional UPDATE of [`record_use`].
pub(super) fn use_recording(used: &PasskeyUse) -> UpdateStatement {
    passkey::Entity::update_many()
        .col_expr(
            passkey::Column::Credential,
            Expr::value(used.credential.clone()),
        )
        .col_expr(passkey::Column::SignCount, Expr::value(used.sign_count))
        .col_expr(passkey::Column::BackedUp, Expr::value(used.backed_up))
        .col_expr(passkey::Column::LastUsedAt, Expr::value(used.at))
        .filter(passkey::Column::Id.eq(used.id))
        .filter(passkey::Column::SignCount.eq(used.previous_sign_count))
        .into_query()
}

/// Deletes a ceremony of `kind`; whether this call did (of racing calls,
/// one).
pub(super) async fn delete_ceremony(
    connection: &impl ConnectionTrait,
    id: Uuid,
    kind: CeremonyKind,
) -> Result<bool, AuthError> {
    let deleted = connection
        .execute(&ceremony_deletion(id, kind))
        .await
        .map_err(classify)?;
    Ok(deleted.rows_affected() == 1)
}

/// The DELETE of [`delete_ceremony`].
pub(super) fn ceremony_deletion(id: Uuid, kind: CeremonyKind) -> DeleteStatement {
    passkey_ceremony::Entity::delete_many()
        .filter(passkey_ceremony::Column::Id.eq(id))
        .filter(passkey_ceremony::Column::Kind.eq(kind.as_str()))
        .into_query()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeDelta;

    use super::*;
    use crate::domain::{UserRecord, UserStore as _};
    use crate::storage::DatabaseSettings;

    async fn database_with_user(dir: &tempfile::TempDir) -> (Database, Uuid) {
        let settings = DatabaseSettings {
            url: format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("authd.db").display()
            ),
            max_connections: 2,
            connect_timeout: Duration::from_secs(5),
        };
        let database = Database::connect(&settings).await.unwrap();
        database.migrate().await.unwrap();
        let user_id = Uuid::now_v7();
        database
            .insert_user(UserRecord {
                id: user_id,
                username: format!("user-{user_id}"),
                username_canonical: format!("user-{user_id}"),
                password_hash: Some("$argon2id$unused".into()),
                created_at: Utc::now(),
                disabled_at: None,
            })
            .await
            .unwrap();
        (database, user_id)
    }

    fn passkey_of(user_id: Uuid, credential_id: &str) -> PasskeyRecord {
        PasskeyRecord {
            id: Uuid::now_v7(),
            user_id,
            credential_id: credential_id.into(),
            credential: "{}".into(),
            name: "laptop".into(),
            created_at: Utc::now(),
            last_used_at: None,
            backed_up: false,
            sign_count: 0,
        }
    }

    #[tokio::test]
    async fn an_account_keeps_the_first_user_handle_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let (database, user_id) = database_with_user(&dir).await;
        let first = database
            .passkey_user_handle(user_id, Uuid::new_v4())
            .await
            .unwrap();
        let again = database
            .passkey_user_handle(user_id, Uuid::new_v4())
            .await
            .unwrap();
        assert_eq!(first, again);
        assert_ne!(first, user_id);
        assert_eq!(
            database.user_of_passkey_handle(first).await.unwrap(),
            Some(user_id)
        );
    }

    #[tokio::test]
    async fn a_credential_id_is_stored_once_across_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let (database, user_id) = database_with_user(&dir).await;
        assert!(
            database
                .insert_passkey(&passkey_of(user_id, "abc"), &[])
                .await
                .unwrap()
        );
        assert!(
            !database
                .insert_passkey(&passkey_of(user_id, "abc"), &[])
                .await
                .unwrap()
        );
        assert_eq!(database.passkeys_of(user_id).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_ceremony_is_spent_once_by_its_own_kind_before_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let (database, user_id) = database_with_user(&dir).await;
        let now = Utc::now();
        let ceremony = |expires_at| CeremonyRecord {
            id: Uuid::now_v7(),
            kind: CeremonyKind::Registration,
            user_id: Some(user_id),
            state: "{}".into(),
            expires_at,
        };
        let live = ceremony(now + TimeDelta::minutes(5));
        let expired = ceremony(now - TimeDelta::seconds(1));
        for record in [&live, &expired] {
            database.insert_passkey_ceremony(record).await.unwrap();
        }
        assert_eq!(
            database
                .take_passkey_ceremony(live.id, CeremonyKind::Login, now)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            database
                .take_passkey_ceremony(live.id, CeremonyKind::Registration, now)
                .await
                .unwrap(),
            Some(live.clone())
        );
        assert_eq!(
            database
                .take_passkey_ceremony(live.id, CeremonyKind::Registration, now)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            database
                .take_passkey_ceremony(expired.id, CeremonyKind::Registration, now)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            database
                .delete_passkey_ceremonies_expired_before(now)
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn a_use_is_recorded_only_against_the_counter_it_was_checked_with() {
        let dir = tempfile::tempdir().unwrap();
        let (database, user_id) = database_with_user(&dir).await;
        let record = passkey_of(user_id, "counted");
        database.insert_passkey(&record, &[]).await.unwrap();
        let used = PasskeyUse {
            id: record.id,
            previous_sign_count: 0,
            sign_count: 7,
            credential: "{\"counter\":7}".into(),
            backed_up: true,
            at: Utc::now(),
        };
        assert!(database.record_passkey_use(&used).await.unwrap());
        assert!(!database.record_passkey_use(&used).await.unwrap());
        let stored = database
            .passkey_by_credential_id("counted")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                stored.sign_count,
                stored.backed_up,
                stored.last_used_at.is_some()
            ),
            (7, true, true)
        );
    }

    #[tokio::test]
    async fn passkeys_are_renamed_and_removed_only_by_their_account() {
        let dir = tempfile::tempdir().unwrap();
        let (database, user_id) = database_with_user(&dir).await;
        let record = passkey_of(user_id, "mine");
        database.insert_passkey(&record, &[]).await.unwrap();
        let stranger = Uuid::now_v7();
        assert!(
            !database
                .rename_passkey(stranger, record.id, "x")
                .await
                .unwrap()
        );
        assert_eq!(
            database
                .delete_passkey(stranger, record.id, &[])
                .await
                .unwrap(),
            PasskeyRemoval::NotFound
        );
        assert!(
            database
                .rename_passkey(user_id, record.id, "phone")
                .await
                .unwrap()
        );
        assert_eq!(
            database.passkeys_of(user_id).await.unwrap()[0].name,
            "phone"
        );
        assert_eq!(
            database
                .delete_passkey(user_id, record.id, &[])
                .await
                .unwrap(),
            PasskeyRemoval::Removed
        );
        assert!(database.passkeys_of(user_id).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn deleting_an_account_deletes_its_passkeys_and_handle() {
        let dir = tempfile::tempdir().unwrap();
        let (database, user_id) = database_with_user(&dir).await;
        let handle = database
            .passkey_user_handle(user_id, Uuid::new_v4())
            .await
            .unwrap();
        database
            .insert_passkey(&passkey_of(user_id, "gone"), &[])
            .await
            .unwrap();
        assert!(database.delete_user(user_id, &[]).await.unwrap());
        assert!(
            database
                .passkey_by_credential_id("gone")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            database
                .user_of_passkey_handle(handle)
                .await
                .unwrap()
                .is_none()
        );
    }
}
