//! E-mail alerts: a local SMTP server started in the test receives each alert as one short
//! message, with the alert as its subject, the password only in `AUTH`, and never a token;
//! `tokenwatch alerts test` reports every channel's result.

mod common;

use common::Sandbox;
use common::smtp::SmtpServer;
use tokenwatch::alerts::Alerter;
use tokenwatch::config::{EmailConfig, NotificationsConfig};
use tokenwatch::messages::{Alert, AlertEvent, Level};
use tokenwatch::secret::Secret;
use tokenwatch::token::TokenState;

const PASSWORD: &str = "smtp-Pass-4kQz9";

fn email(port: u16) -> EmailConfig {
    EmailConfig {
        url: format!("smtp://alerts-user@127.0.0.1:{port}"),
        from: "tokenwatch <alerts@example.com>".into(),
        to: vec!["trader@example.com".into(), "desk@example.com".into()],
        password: Some(Secret::new(PASSWORD)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_reaches_the_smtp_server_as_one_short_message() {
    let smtp = SmtpServer::start().await;
    let notifications = NotificationsConfig {
        email: Some(email(smtp.port)),
        ..NotificationsConfig::default()
    };
    let alerter = Alerter::new(&notifications);
    let sender = alerter.spawn();
    let at = chrono::Utc::now();
    sender.send(Alert {
        account: "default".into(),
        event: AlertEvent::Expired,
        level: Level::Critical,
        title: "Token expired!".into(),
        message: "log in: tokenwatch login".into(),
        state: TokenState::Expired,
        expires_at: Some(at),
        at,
    });
    assert!(sender.close(std::time::Duration::from_secs(10)).await);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.from, "<alerts@example.com>");
    assert_eq!(mail.to, ["<trader@example.com>", "<desk@example.com>"]);
    assert!(
        mail.data
            .contains("Subject: tokenwatch [default] Token expired!: log in: tokenwatch login"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("State: expired"), "{}", mail.data);
    assert!(mail.data.contains("+05:30"), "times are IST: {}", mail.data);
    // The password goes in AUTH, nowhere else.
    assert_eq!(
        mail.auth.as_deref(),
        Some(&*format!("\0alerts-user\0{PASSWORD}"))
    );
    assert!(!mail.data.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_test_reports_each_channel() {
    let smtp = SmtpServer::start().await;
    let sb = Sandbox::new();
    // Beside the mail server, a webhook nobody listens on: one channel works, one fails.
    let dead = common::free_port();
    sb.write_yaml(&format!(
        "notifications:\n  webhook_url: \"http://127.0.0.1:{dead}/hook\"\n  email:\n    url: \"smtp://alerts-user@127.0.0.1:{}\"\n    from: \"alerts@example.com\"\n    to: [\"trader@example.com\"]\n",
        smtp.port
    ));
    let out = tokio::task::spawn_blocking(move || {
        let out = sb.run_with(
            &["alerts", "test"],
            &[("TOKENWATCH__NOTIFICATIONS__EMAIL__PASSWORD", PASSWORD)],
        );
        (out, sb)
    })
    .await
    .unwrap()
    .0;
    assert_eq!(out.code, Some(1), "{}", out.all());
    out.assert_stdout(&format!("✓ e-mail via 127.0.0.1:{}: delivered", smtp.port));
    out.assert_stdout(&format!("✗ webhook http://127.0.0.1:{dead}/…:"));
    assert!(!out.all().contains(PASSWORD), "{}", out.all());
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    // Long headers are folded onto a second line; read them unfolded.
    let unfolded = mails[0].data.replace("\n ", " ");
    assert!(
        unfolded.contains(
            "Subject: tokenwatch [default] Test alert: tokenwatch alerts test: this channel works"
        ),
        "{unfolded}"
    );
}

#[test]
fn unencrypted_mail_to_another_machine_is_refused_at_load() {
    let sb = Sandbox::new();
    sb.write_yaml(
        "notifications:\n  email:\n    url: \"smtp://user@smtp.example.com:25\"\n    from: \"alerts@example.com\"\n    to: [\"trader@example.com\"]\n",
    );
    let out = sb.run(&["config", "check"]);
    assert_eq!(out.code, Some(78), "{}", out.all());
    out.assert_stderr("notifications.email.url");
    out.assert_stderr("unencrypted to smtp.example.com");
    // With no channel at all, alerts test says what to set.
    let sb = Sandbox::new();
    let out = sb.run(&["alerts", "test"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    out.assert_stderr("no alert channel is configured");
}
