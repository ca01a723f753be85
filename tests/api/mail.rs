//! Mail delivery against a real SMTP server (aiosmtpd, `smtp_server.rs`):
//! what the outbox holds arrives, with its headers, once, through an SMTP
//! outage, a `kill -9` and two instances sending from one database.

use std::collections::HashSet;
use std::time::Duration;

use authd::app::Application;
use authd::config::Settings;
use authd::domain::OutboxStore as _;
use chrono::Utc;

use crate::helpers::{
    TestApp, TestDatabase, spawn_authd_process, spawn_authd_process_logged, test_settings,
};
use crate::outbox::{open, register};
use crate::smtp_server::SmtpServer;

const MAIL_FROM: &str = "authd <no-reply@authd.test>";

fn send_through(smtp: &SmtpServer) -> impl FnOnce(&mut Settings) {
    let url = smtp.url();
    move |settings| {
        settings.smtp_url = Some(url);
        settings.mail_from = Some(MAIL_FROM.into());
        settings.mail_poll_interval = Duration::from_millis(100);
    }
}

/// Waits (30 s at most) until the outbox has nothing left to send.
async fn wait_until_sent(database: &TestDatabase) {
    let store = open(database).await;
    tokio::time::timeout(Duration::from_secs(30), async {
        while store.outbox_backlog().await.expect("backlog").queued > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the outbox empties");
}

/// Waits (30 s at most) until every queued mail has failed an attempt.
async fn wait_until_every_mail_failed(database: &TestDatabase, count: i64) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let failed: i64 = database
                .query_value(
                    "SELECT COUNT(*) AS failed FROM mail_outbox WHERE last_error IS NOT NULL",
                    "failed",
                )
                .await;
            if failed >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every mail tried and failed");
}

fn message_ids(mails: &[crate::smtp_server::ReceivedMail]) -> HashSet<String> {
    mails
        .iter()
        .map(|mail| mail.header("Message-ID").expect("a Message-ID"))
        .collect()
}

#[tokio::test]
async fn a_queued_mail_arrives_with_its_from_to_message_id_subject_and_both_bodies() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::spawn_with(send_through(&smtp)).await;
    let store = open(&app.database).await;

    register(&store, "ada@example.com", Utc::now()).await;
    let mails = smtp.wait_for(1).await;

    assert_eq!(mails.len(), 1, "sent once");
    let mail = &mails[0];
    assert_eq!(mail.header("From").as_deref(), Some(MAIL_FROM));
    assert_eq!(mail.header("To").as_deref(), Some("ada@example.com"));
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Verify your email address")
    );
    let message_id = mail.header("Message-ID").expect("a Message-ID");
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@authd.test>"),
        "{message_id}"
    );
    assert_eq!(
        mail.body("text/plain")
            .map(|b| b.trim().to_owned())
            .as_deref(),
        Some("text")
    );
    assert_eq!(
        mail.body("text/html")
            .map(|b| b.trim().to_owned())
            .as_deref(),
        Some("<p>html</p>")
    );
    wait_until_sent(&app.database).await;
}

#[tokio::test]
async fn mails_queued_while_the_smtp_server_is_down_all_arrive_once_it_is_up() {
    let mut smtp = SmtpServer::stopped();
    let app = TestApp::spawn_with(send_through(&smtp)).await;
    let store = open(&app.database).await;
    for n in 0..3 {
        register(&store, &format!("user{n}@example.com"), Utc::now()).await;
    }
    wait_until_every_mail_failed(&app.database, 3).await;
    assert!(smtp.received().is_empty());

    smtp.resume().await;
    let mails = smtp.wait_for(3).await;

    assert_eq!(mails.len(), 3, "each mail once");
    assert_eq!(message_ids(&mails).len(), 3);
    wait_until_sent(&app.database).await;
    // Metrics are per process and `cargo test` runs every test in one: the
    // counters hold other tests' mails too, and the backlog gauges whichever
    // instance reported last, so this asserts what this test must have added.
    let metrics = app
        .get("/metrics")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let sent = counter(&metrics, "authd_mails_sent_total");
    assert!(sent >= 3.0, "{metrics}");
    let failed = counter(&metrics, "authd_mail_failed_attempts_total");
    assert!(failed >= 3.0, "every mail failed once first: {metrics}");
    for gauge in [
        "authd_mails_queued ",
        "authd_mail_oldest_queued_age_seconds ",
    ] {
        assert!(metrics.contains(gauge), "{metrics}");
    }
}

/// The value of an unlabelled series in a Prometheus scrape.
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
}

#[tokio::test]
async fn two_instances_on_one_database_send_each_mail_once() {
    let smtp = SmtpServer::start().await;
    let first = TestApp::spawn_with(send_through(&smtp)).await;
    let _second = first.spawn_beside().await;
    let store = open(&first.database).await;

    for n in 0..20 {
        register(&store, &format!("user{n}@example.com"), Utc::now()).await;
    }
    let mails = smtp.wait_for(20).await;

    assert_eq!(mails.len(), 20, "no mail sent twice");
    assert_eq!(message_ids(&mails).len(), 20);
}

#[tokio::test]
async fn mails_queued_before_a_kill_9_arrive_after_the_restart() {
    let mut smtp = SmtpServer::stopped();
    let database = TestDatabase::create().await;
    let url = smtp.url();
    let args = [
        "--database-url",
        database.url.as_str(),
        "--smtp-url",
        url.as_str(),
        "--mail-from",
        MAIL_FROM,
        "--mail-poll-interval",
        "100ms",
    ];
    let (mut first, _, _) = spawn_authd_process(&args).await;
    let store = open(&database).await;
    for n in 0..3 {
        register(&store, &format!("user{n}@example.com"), Utc::now()).await;
    }
    wait_until_every_mail_failed(&database, 3).await;

    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("killed");
    smtp.resume().await;
    let (_second, _, _) = spawn_authd_process(&args).await;
    let mails = smtp.wait_for(3).await;

    assert_eq!(mails.len(), 3);
    assert_eq!(message_ids(&mails).len(), 3);
}

#[tokio::test]
async fn without_an_smtp_url_authd_starts_and_says_mail_is_off() {
    let database = TestDatabase::create().await;
    let (_child, _, _, log) =
        spawn_authd_process_logged(&[], &["--database-url", database.url.as_str()]).await;

    let log = log.lock().expect("log").join("\n");
    assert!(log.contains("mail: off"), "{log}");
    assert!(log.contains("MAIL_NOT_CONFIGURED"), "{log}");
}

#[tokio::test]
async fn an_smtp_url_without_a_sender_is_refused_at_start_up() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url);
    settings.smtp_url = Some("smtp://127.0.0.1:25".into());

    let refused = Application::build(settings).await.err().expect("refused");

    assert!(refused.to_string().contains("--mail-from"), "{refused}");
}

#[tokio::test]
async fn a_mail_template_naming_an_unknown_value_stops_authd_at_start_up() {
    let database = TestDatabase::create().await;
    let templates = tempfile::tempdir().expect("templates directory");
    std::fs::write(
        templates.path().join("verify_email.html"),
        "<p>{{password}}</p>",
    )
    .expect("template");
    let mut settings = test_settings(&database.url);
    settings.mail_templates_dir = Some(templates.path().to_owned());

    let refused = Application::build(settings).await.err().expect("refused");

    assert!(
        format!("{refused:#}").contains("verify_email.html: no value `password`"),
        "{refused:#}"
    );
}

#[tokio::test]
async fn a_mail_templates_directory_with_known_values_is_accepted() {
    let templates = tempfile::tempdir().expect("templates directory");
    std::fs::write(
        templates.path().join("verify_email.txt"),
        "Open {{ link }} within {{valid_for}}.",
    )
    .expect("template");
    let directory = templates.path().to_owned();

    TestApp::spawn_with(move |settings| settings.mail_templates_dir = Some(directory)).await;
}
