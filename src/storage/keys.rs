//! The SigningKeyStore port on sea-orm: the token signing keys.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use zeroize::Zeroizing;

use super::database::{Database, classify};
use super::entities::signing_key;
use crate::domain::{AuthError, SigningKeyRecord, SigningKeyStore};

impl SigningKeyStore for Database {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, AuthError> {
        let rows = signing_key::Entity::find()
            .order_by_desc(signing_key::Column::ActivatesAt)
            .order_by_desc(signing_key::Column::Kid)
            .all(&self.connection)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(|row| SigningKeyRecord {
                kid: row.kid,
                algorithm: row.algorithm,
                private_key: Zeroizing::new(row.private_key),
                public_key: row.public_key,
                created_at: row.created_at,
                activates_at: row.activates_at,
            })
            .collect())
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<(), AuthError> {
        let row = signing_key::ActiveModel {
            kid: Set(key.kid.clone()),
            algorithm: Set(key.algorithm.clone()),
            private_key: Set(key.private_key.to_vec()),
            public_key: Set(key.public_key.clone()),
            created_at: Set(key.created_at),
            activates_at: Set(key.activates_at),
        };
        signing_key::Entity::insert(row)
            .exec_without_returning(&self.connection)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn replace_signing_key_private_key(
        &self,
        kid: &str,
        expected: &[u8],
        replacement: &[u8],
    ) -> Result<bool, AuthError> {
        let result = signing_key::Entity::update_many()
            .col_expr(
                signing_key::Column::PrivateKey,
                Expr::value(replacement.to_vec()),
            )
            .filter(signing_key::Column::Kid.eq(kid))
            .filter(signing_key::Column::PrivateKey.eq(expected.to_vec()))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected == 1)
    }

    async fn delete_signing_keys(&self, kids: &[String]) -> Result<u64, AuthError> {
        let result = signing_key::Entity::delete_many()
            .filter(signing_key::Column::Kid.is_in(kids.iter().cloned()))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }
}
