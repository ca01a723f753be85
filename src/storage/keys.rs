//! The SigningKeyStore port on sea-orm: the token signing keys.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

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
                private_key: row.private_key,
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
            private_key: Set(key.private_key.clone()),
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

    async fn delete_signing_keys(&self, kids: &[String]) -> Result<u64, AuthError> {
        let result = signing_key::Entity::delete_many()
            .filter(signing_key::Column::Kid.is_in(kids.iter().cloned()))
            .exec(&self.connection)
            .await
            .map_err(classify)?;
        Ok(result.rows_affected)
    }
}
