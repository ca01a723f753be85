//! The mail outbox and the email store, through the storage adapter on the
//! test's database (SQLite, or PostgreSQL with TEST_DATABASE_URL): mails are
//! stored with the change they report, each claimed by one sender at a
//! time, and mailed tokens are spent once.

use std::collections::HashSet;
use std::time::Duration;

use authd::domain::{
    AuthError, EmailRecord, EmailStore as _, MailPurpose, MailTokenRecord, OutboxEntry, OutboxMail,
    OutboxStore as _, UserRecord, UserStore as _,
};
use authd::storage::{Database, DatabaseSettings};
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::helpers::TestDatabase;

/// The adapter on the test's database, migrated.
pub async fn open(database: &TestDatabase) -> Database {
    let store = Database::connect(&DatabaseSettings {
        url: database.url.clone(),
        max_connections: 4,
        connect_timeout: Duration::from_secs(5),
    })
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn user(now: DateTime<Utc>) -> UserRecord {
    let name = format!("user{}", Uuid::new_v4().simple());
    UserRecord {
        id: Uuid::now_v7(),
        username: name.clone(),
        username_canonical: name,
        password_hash: Some(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        ),
        created_at: now,
        disabled_at: None,
    }
}

fn email(user_id: Uuid, address: &str, now: DateTime<Utc>) -> EmailRecord {
    EmailRecord {
        user_id,
        address: address.to_owned(),
        address_normalized: address.to_lowercase(),
        created_at: now,
        verified_at: None,
    }
}

fn token(user_id: Uuid, address: &str, now: DateTime<Utc>) -> MailTokenRecord {
    MailTokenRecord {
        token_hash: Uuid::new_v4().simple().to_string(),
        user_id,
        purpose: MailPurpose::VerifyEmail,
        address_normalized: address.to_lowercase(),
        created_at: now,
        expires_at: now + TimeDelta::hours(24),
    }
}

/// A mail to `to` as the domain would queue it.
pub fn mail(to: &str, now: DateTime<Utc>) -> OutboxMail {
    let id = Uuid::now_v7();
    OutboxMail {
        id,
        message_id: format!("{id}@authd.test"),
        recipient: to.to_owned(),
        subject: "Verify your email address".into(),
        text_body: "text".into(),
        html_body: "<p>html</p>".into(),
        created_at: now,
    }
}

/// Registers an account with `address`, its token and its mail.
pub async fn register(
    store: &Database,
    address: &str,
    now: DateTime<Utc>,
) -> (UserRecord, MailTokenRecord) {
    let account = user(now);
    let token = token(account.id, address, now);
    store
        .insert_user_with_email(
            account.clone(),
            &email(account.id, address, now),
            Some((&token, &[OutboxEntry::Mail(mail(address, now))])),
        )
        .await
        .expect("register");
    (account, token)
}

#[tokio::test]
async fn a_queued_mail_is_claimed_by_one_sender_until_its_claim_lapses_then_sent_once() {
    let database = TestDatabase::create().await;
    let store = open(&database).await;
    let now = Utc::now();
    register(&store, "ada@example.com", now).await;

    let claimed = store
        .claim_due_mails(now, now + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "the registration's mail is due");
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].mail.recipient, "ada@example.com");
    assert!(
        store
            .claim_due_mails(now, now + TimeDelta::seconds(60), 10)
            .await
            .unwrap()
            .is_empty(),
        "a live claim holds the mail"
    );

    // The sender died: its claim lapses and another takes the mail over.
    let later = now + TimeDelta::seconds(61);
    let retaken = store
        .claim_due_mails(later, later + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(retaken.len(), 1);
    assert_eq!(retaken[0].attempts, 2);
    assert_eq!(
        retaken[0].mail.message_id, claimed[0].mail.message_id,
        "the same Message-ID on every attempt"
    );

    store
        .mark_mail_sent(retaken[0].mail.id, later)
        .await
        .unwrap();
    let much_later = later + TimeDelta::hours(1);
    assert!(
        store
            .claim_due_mails(much_later, much_later + TimeDelta::seconds(60), 10)
            .await
            .unwrap()
            .is_empty(),
        "a sent mail is never claimed again"
    );
    let backlog = store.outbox_backlog().await.unwrap();
    assert_eq!(backlog.queued, 0);
    assert_eq!(backlog.oldest_queued_at, None);
    assert_eq!(store.delete_mails_sent_before(later).await.unwrap(), 0);
    assert_eq!(
        store
            .delete_mails_sent_before(later + TimeDelta::seconds(1))
            .await
            .unwrap(),
        1,
        "a sent mail is forgotten after its retention"
    );
}

#[tokio::test]
async fn a_failed_mail_waits_until_its_next_attempt() {
    let database = TestDatabase::create().await;
    let store = open(&database).await;
    let now = Utc::now();
    register(&store, "ada@example.com", now).await;
    let claimed = store
        .claim_due_mails(now, now + TimeDelta::seconds(60), 10)
        .await
        .unwrap();

    let retry_at = now + TimeDelta::seconds(30);
    store
        .mark_mail_failed(claimed[0].mail.id, "connection refused", retry_at)
        .await
        .unwrap();

    let early = retry_at - TimeDelta::seconds(1);
    assert!(
        store
            .claim_due_mails(early, early + TimeDelta::seconds(60), 10)
            .await
            .unwrap()
            .is_empty(),
        "not before its next attempt"
    );
    let again = store
        .claim_due_mails(retry_at, retry_at + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        store
            .delete_mails_sent_before(retry_at + TimeDelta::days(365))
            .await
            .unwrap(),
        0,
        "a mail not sent yet is never pruned"
    );
    let backlog = store.outbox_backlog().await.unwrap();
    assert_eq!(backlog.queued, 1);
    assert!(backlog.oldest_queued_at.is_some());
}

#[tokio::test]
async fn of_two_instances_claiming_at_once_each_mail_goes_to_one() {
    let database = TestDatabase::create().await;
    let first = open(&database).await;
    let second = open(&database).await;
    let now = Utc::now();
    for n in 0..30 {
        register(&first, &format!("user{n}@example.com"), now).await;
    }

    let claim_all = |store: Database| async move {
        let mut ids = Vec::new();
        // Bounded: were a claimed mail claimable again, claims would never
        // run out.
        for _ in 0..100 {
            let batch = store
                .claim_due_mails(now, now + TimeDelta::seconds(60), 3)
                .await
                .unwrap();
            if batch.is_empty() {
                return ids;
            }
            ids.extend(batch.into_iter().map(|claimed| claimed.mail.id));
        }
        panic!("claims never ran out: mails were claimed again");
    };
    let (a, b) = tokio::join!(
        tokio::spawn(claim_all(first.clone())),
        tokio::spawn(claim_all(second.clone()))
    );
    let (a, b) = (a.unwrap(), b.unwrap());

    let all: Vec<Uuid> = a.iter().chain(&b).copied().collect();
    let distinct: HashSet<Uuid> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        30,
        "every mail claimed once: {} and {}",
        a.len(),
        b.len()
    );
    assert_eq!(distinct.len(), 30);
}

#[tokio::test]
async fn a_registration_refused_for_its_name_queues_no_mail() {
    let database = TestDatabase::create().await;
    let store = open(&database).await;
    let now = Utc::now();
    let (account, _) = register(&store, "ada@example.com", now).await;
    let claimed = store
        .claim_due_mails(now, now + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    store.mark_mail_sent(claimed[0].mail.id, now).await.unwrap();

    let mut twin = user(now);
    twin.username_canonical = account.username_canonical.clone();
    let refused = store
        .insert_user_with_email(
            twin.clone(),
            &email(twin.id, "eve@example.com", now),
            Some((
                &token(twin.id, "eve@example.com", now),
                &[OutboxEntry::Mail(mail("eve@example.com", now))],
            )),
        )
        .await;

    assert!(
        matches!(refused, Err(AuthError::UsernameTaken)),
        "{refused:?}"
    );
    assert_eq!(store.outbox_backlog().await.unwrap().queued, 0);
    assert_eq!(store.email_of(twin.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_verification_token_is_spent_once_and_voided_by_a_newer_one() {
    let database = TestDatabase::create().await;
    let store = open(&database).await;
    let now = Utc::now();
    let (account, first) = register(&store, "Ada@Example.com", now).await;

    let newer = token(account.id, "Ada@Example.com", now);
    store
        .replace_mail_token(&newer, &[OutboxEntry::Mail(mail("Ada@Example.com", now))])
        .await
        .unwrap();
    assert_eq!(
        store.verify_email(&first.token_hash, now).await.unwrap(),
        None,
        "a newer request voids the previous token"
    );

    let verified = store
        .verify_email(&newer.token_hash, now)
        .await
        .unwrap()
        .expect("verified");
    assert_eq!(
        verified.verified_at.map(|at| at.timestamp()),
        Some(now.timestamp())
    );
    assert_eq!(verified.address, "Ada@Example.com");
    assert_eq!(
        store.verify_email(&newer.token_hash, now).await.unwrap(),
        None,
        "single use"
    );
}

#[tokio::test]
async fn an_expired_verification_token_verifies_nothing() {
    let database = TestDatabase::create().await;
    let store = open(&database).await;
    let now = Utc::now();
    let (account, token) = register(&store, "ada@example.com", now).await;

    let after_expiry = token.expires_at + TimeDelta::seconds(1);
    assert_eq!(
        store
            .verify_email(&token.token_hash, after_expiry)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .email_of(account.id)
            .await
            .unwrap()
            .and_then(|e| e.verified_at),
        None
    );
    assert_eq!(
        store
            .delete_mail_tokens_expired_before(after_expiry)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn an_address_verified_by_one_account_cannot_be_verified_by_another() {
    let database = TestDatabase::create().await;
    let store = open(&database).await;
    let now = Utc::now();
    let (_, first) = register(&store, "ada@example.com", now).await;
    let (second_account, second) = register(&store, "ada@example.com", now).await;

    store
        .verify_email(&first.token_hash, now)
        .await
        .unwrap()
        .expect("the first verifies");
    let refused = store.verify_email(&second.token_hash, now).await;

    assert!(matches!(refused, Err(AuthError::EmailTaken)), "{refused:?}");
    assert_eq!(
        store
            .email_of(second_account.id)
            .await
            .unwrap()
            .and_then(|e| e.verified_at),
        None
    );
}

#[tokio::test]
async fn deleting_an_account_forgets_its_address_but_not_its_queued_mail() {
    let database = TestDatabase::create().await;
    let store = open(&database).await;
    let now = Utc::now();
    let (account, token) = register(&store, "ada@example.com", now).await;

    assert!(store.delete_user(account.id, &[]).await.unwrap());

    assert_eq!(store.email_of(account.id).await.unwrap(), None);
    assert_eq!(
        store.verify_email(&token.token_hash, now).await.unwrap(),
        None
    );
    assert_eq!(store.outbox_backlog().await.unwrap().queued, 1);
}

/// A sender that counts what it was handed, for the delivery rule's tests:
/// the store under it is the real one.
#[derive(Default)]
struct CountingSender(std::sync::atomic::AtomicUsize);

impl authd::domain::MailSender for CountingSender {
    async fn send(&self, _mail: &OutboxMail) -> Result<(), authd::domain::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_mail_whose_claim_could_lapse_while_it_is_sent_is_left_to_lapse() {
    let database = TestDatabase::create().await;
    let store = open(&database).await;
    register(&store, "ada@example.com", Utc::now()).await;
    let sender = CountingSender::default();
    let too_short = authd::domain::OutboxSettings {
        claim_for: Duration::from_secs(30),
        send_timeout: Duration::from_secs(60),
        ..authd::domain::OutboxSettings::default()
    };

    let delivered = authd::domain::deliver_due(&store, &sender, Utc::now(), &too_short)
        .await
        .unwrap();

    assert_eq!(delivered, authd::domain::Delivered::default());
    assert_eq!(sender.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    let lapsed = Utc::now() + TimeDelta::seconds(31);
    let delivered = authd::domain::deliver_due(
        &store,
        &sender,
        lapsed,
        &authd::domain::OutboxSettings::default(),
    )
    .await
    .unwrap();
    assert_eq!(delivered.sent, 1, "taken up once the claim lapsed");
    assert_eq!(store.outbox_backlog().await.unwrap().queued, 0);
}
