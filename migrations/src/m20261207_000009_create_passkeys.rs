use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PasskeyUserHandles::Table)
                    .if_not_exists()
                    .col(uuid(PasskeyUserHandles::UserId).primary_key())
                    // The WebAuthn user handle authenticators keep: random,
                    // so that a passkey does not carry the user id.
                    .col(uuid_uniq(PasskeyUserHandles::Handle))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_passkey_user_handles_user_id")
                            .from(PasskeyUserHandles::Table, PasskeyUserHandles::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Passkeys::Table)
                    .if_not_exists()
                    .col(pk_uuid(Passkeys::Id))
                    .col(uuid(Passkeys::UserId))
                    // base64url; unique across accounts: a credential signs
                    // in to one account only.
                    .col(text_uniq(Passkeys::CredentialId))
                    // webauthn-rs' Passkey as JSON: the public key and its
                    // flags. Public, not a secret.
                    .col(text(Passkeys::Credential))
                    .col(text(Passkeys::Name))
                    .col(timestamp_with_time_zone(Passkeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(Passkeys::LastUsedAt))
                    .col(boolean(Passkeys::BackedUp))
                    // Kept apart from the JSON so that a use is one
                    // conditional UPDATE on it.
                    .col(big_integer(Passkeys::SignCount))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_passkeys_user_id")
                            .from(Passkeys::Table, Passkeys::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_passkeys_user_id")
                    .table(Passkeys::Table)
                    .col(Passkeys::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PasskeyCeremonies::Table)
                    .if_not_exists()
                    .col(pk_uuid(PasskeyCeremonies::Id))
                    // `registration` or `login`: a state is finished by its
                    // own kind of call only.
                    .col(text(PasskeyCeremonies::Kind))
                    // Null for a discoverable login: the passkey names the user.
                    .col(uuid_null(PasskeyCeremonies::UserId))
                    // webauthn-rs' ceremony state as JSON (holds the challenge).
                    .col(text(PasskeyCeremonies::State))
                    .col(timestamp_with_time_zone(PasskeyCeremonies::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_passkey_ceremonies_user_id")
                            .from(PasskeyCeremonies::Table, PasskeyCeremonies::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_passkey_ceremonies_expires_at")
                    .table(PasskeyCeremonies::Table)
                    .col(PasskeyCeremonies::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PasskeyCeremonies::Table.into_iden(),
            Passkeys::Table.into_iden(),
            PasskeyUserHandles::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum PasskeyUserHandles {
    Table,
    UserId,
    Handle,
}

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    Id,
    UserId,
    CredentialId,
    Credential,
    Name,
    CreatedAt,
    LastUsedAt,
    BackedUp,
    SignCount,
}

#[derive(DeriveIden)]
enum PasskeyCeremonies {
    Table,
    Id,
    Kind,
    UserId,
    State,
    ExpiresAt,
}
