//! `TwilioMessaging` against the fake Twilio over real HTTP: the wire format of a send,
//! how each kind of failure is classified, and reconciling a send whose answer was lost
//! with `lookup` instead of sending twice.

#[path = "fakes/twilio.rs"]
mod fake_twilio;

use std::time::Duration;

use actors::ports::providers::{Channel, MessagingProvider, OutboundMessage, ProviderError};
use actors::resilience::backoff::ErrorClass;
use aro::providers::twilio::{is_opt_out, twilio_code};
use aro::providers::{TwilioMessaging, TwilioSettings};
use fake_twilio::{Failure, FakeTwilio};
use url::Url;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "fake-auth-token";
const FROM: &str = "+15005550006";
const TO: &str = "+15551234567";
const CALLBACK: &str = "https://aro.example/webhooks/twilio/status";

fn settings(base: &str, token: &str, timeout: Duration) -> TwilioSettings {
    TwilioSettings {
        account_sid: ACCOUNT.to_string(),
        auth_token: token.to_string(),
        from: FROM.to_string(),
        api_base: Url::parse(base).expect("base url"),
        status_callback: Some(Url::parse(CALLBACK).expect("callback url")),
        timeout,
    }
}

fn client(fake: &FakeTwilio) -> TwilioMessaging {
    TwilioMessaging::new(settings(&fake.base_url(), TOKEN, Duration::from_secs(5)))
}

fn message(channel: Channel, body: &str) -> OutboundMessage {
    OutboundMessage {
        idempotency_key: format!("key-{body}"),
        channel,
        to: TO.to_string(),
        body: body.to_string(),
    }
}

async fn send_err(client: &TwilioMessaging, m: OutboundMessage) -> ProviderError {
    client.send(m).await.expect_err("send should fail")
}

#[actix_rt::test]
async fn send_speaks_twilios_wire_format() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    let receipt = client(&fake)
        .send(message(Channel::Sms, "Reminder: 3pm tomorrow"))
        .await
        .expect("sent");

    assert!(receipt.provider_ref.starts_with("SM"), "{receipt:?}");
    assert_eq!(receipt.status, "queued");
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].sid, receipt.provider_ref);
    assert_eq!(accepted[0].to, TO);
    assert_eq!(accepted[0].from, FROM);
    assert_eq!(accepted[0].body, "Reminder: 3pm tomorrow");
    assert_eq!(accepted[0].status_callback.as_deref(), Some(CALLBACK));

    let log = fake.request_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].method, "POST");
    assert_eq!(
        log[0].path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    );
    assert!(log[0].authorized, "basic auth sid:token");
    assert!(log[0]
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")));
}

#[actix_rt::test]
async fn whatsapp_prefixes_both_addresses() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    client(&fake)
        .send(message(Channel::Whatsapp, "Hola"))
        .await
        .expect("sent");
    let accepted = fake.accepted();
    assert_eq!(accepted[0].to, format!("whatsapp:{TO}"));
    assert_eq!(accepted[0].from, format!("whatsapp:{FROM}"));
}

#[actix_rt::test]
async fn server_error_is_retryable_and_known() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    fake.fail_next(1, Failure::Status500);
    let client = client(&fake);
    let err = send_err(&client, message(Channel::Sms, "a")).await;
    assert_eq!(err.class, ErrorClass::ServerError);
    assert!(err.class.is_retryable());
    assert!(!err.outcome_unknown);
    assert!(fake.accepted().is_empty());
    // The script is spent: the retry goes through.
    client
        .send(message(Channel::Sms, "a"))
        .await
        .expect("retry sent");
    assert_eq!(fake.accepted().len(), 1);
    assert_eq!(fake.requests(), 2);
}

#[actix_rt::test]
async fn rate_limit_carries_retry_after() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    fake.fail_next(
        1,
        Failure::RateLimited {
            retry_after_secs: 7,
        },
    );
    let err = send_err(&client(&fake), message(Channel::Sms, "a")).await;
    assert_eq!(
        err.class,
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert!(!err.outcome_unknown);
}

#[actix_rt::test]
async fn unsubscribed_recipient_is_final_opt_out() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    fake.fail_next(
        1,
        Failure::TwilioError {
            http_status: 400,
            code: 21610,
        },
    );
    let err = send_err(&client(&fake), message(Channel::Sms, "a")).await;
    assert_eq!(err.class, ErrorClass::Final);
    assert!(!err.class.is_retryable());
    assert!(is_opt_out(&err));
    assert_eq!(twilio_code(&err), Some(21610));
    assert!(err.message.contains("opted out"), "{}", err.message);
    assert!(fake.accepted().is_empty());
}

#[actix_rt::test]
async fn invalid_number_is_final_and_masked() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    fake.fail_next(
        1,
        Failure::TwilioError {
            http_status: 400,
            code: 21211,
        },
    );
    let err = send_err(&client(&fake), message(Channel::Sms, "a")).await;
    assert_eq!(err.class, ErrorClass::Final);
    assert!(!is_opt_out(&err));
    assert!(!err.message.contains("5551234567"), "{}", err.message);
    assert!(err.message.contains("4567"), "{}", err.message);
}

#[actix_rt::test]
async fn wrong_credentials_are_a_client_error() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    let client = TwilioMessaging::new(settings(
        &fake.base_url(),
        "wrong-token",
        Duration::from_secs(5),
    ));
    let err = send_err(&client, message(Channel::Sms, "a")).await;
    assert_eq!(err.class, ErrorClass::ClientError);
    assert!(!err.class.is_retryable());
    assert!(!err.outcome_unknown);
    assert_eq!(twilio_code(&err), Some(20003));
    assert!(!err.message.contains("wrong-token"));
    assert!(fake.accepted().is_empty());
    assert!(!fake.request_log()[0].authorized);
}

#[actix_rt::test]
async fn lost_answer_times_out_and_lookup_finds_the_message() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    fake.fail_next(1, Failure::Hang { secs: 3 });
    let client = TwilioMessaging::new(settings(
        &fake.base_url(),
        TOKEN,
        Duration::from_millis(600),
    ));
    let m = message(Channel::Sms, "Your appointment is at 10:00");

    let err = send_err(&client, m.clone()).await;
    assert_eq!(err.class, ErrorClass::Timeout);
    assert!(err.outcome_unknown, "the request was written: {err:?}");
    assert_eq!(fake.accepted().len(), 1, "Twilio did accept it");

    let found = client
        .lookup(m, None)
        .await
        .expect("lookup")
        .expect("the accepted message is found");
    assert_eq!(found.provider_ref, fake.accepted()[0].sid);
    assert_eq!(found.status, "queued");
    assert_eq!(fake.accepted().len(), 1, "nothing was resent");

    let list = fake
        .request_log()
        .into_iter()
        .find(|r| r.method == "GET")
        .expect("a list request");
    assert_eq!(
        list.path,
        format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
    );
    let query: Vec<(String, String)> = serde_urlencoded::from_str(&list.query).expect("query");
    let pairs: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(pairs, vec![("To", TO), ("From", FROM), ("PageSize", "50")]);
}

#[actix_rt::test]
async fn lookup_by_sid() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    let client = client(&fake);
    let m = message(Channel::Sms, "a");
    let receipt = client.send(m.clone()).await.expect("sent");
    fake.set_status(&receipt.provider_ref, "delivered");

    let found = client
        .lookup(m.clone(), Some(receipt.provider_ref.clone()))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found.provider_ref, receipt.provider_ref);
    assert_eq!(found.status, "delivered");

    let unknown = format!("SM{}", "0".repeat(32));
    assert_eq!(client.lookup(m, Some(unknown)).await.expect("lookup"), None);
}

#[actix_rt::test]
async fn lookup_of_a_message_never_sent_is_none() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    let client = client(&fake);
    client
        .send(message(Channel::Sms, "another text"))
        .await
        .expect("sent");
    let never = message(Channel::Sms, "never sent");
    assert_eq!(
        client.lookup(never.clone(), None).await.expect("lookup"),
        None
    );
    // Same body on the other channel is a different message.
    let other_channel = message(Channel::Whatsapp, "another text");
    assert_eq!(
        client.lookup(other_channel, None).await.expect("lookup"),
        None
    );
}

#[actix_rt::test]
async fn lookup_by_content_ignores_failed_attempts() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    let client = client(&fake);
    let m = message(Channel::Sms, "a");
    let receipt = client.send(m.clone()).await.expect("sent");
    fake.set_status(&receipt.provider_ref, "failed");
    assert_eq!(client.lookup(m.clone(), None).await.expect("lookup"), None);
    // By sid the message is still reported, with its status.
    let by_sid = client
        .lookup(m, Some(receipt.provider_ref))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(by_sid.status, "failed");
}

#[actix_rt::test]
async fn closed_port_is_a_network_error_with_known_outcome() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = TwilioMessaging::new(settings(
        &format!("http://127.0.0.1:{port}"),
        TOKEN,
        Duration::from_secs(2),
    ));
    let err = send_err(&client, message(Channel::Sms, "a")).await;
    assert_eq!(err.class, ErrorClass::Network);
    assert!(err.class.is_retryable());
    assert!(!err.outcome_unknown, "nothing was sent: {err:?}");
    let lookup = client
        .lookup(message(Channel::Sms, "a"), None)
        .await
        .expect_err("lookup fails too");
    assert_eq!(lookup.class, ErrorClass::Network);
}

#[actix_rt::test]
async fn dropped_connection_leaves_outcome_unknown_and_lookup_allows_resend() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    fake.fail_next(1, Failure::Drop);
    let client = client(&fake);
    let m = message(Channel::Sms, "a");
    let err = send_err(&client, m.clone()).await;
    assert_eq!(err.class, ErrorClass::Network, "{err:?}");
    assert!(err.outcome_unknown, "the request was written: {err:?}");
    assert!(fake.accepted().is_empty());
    assert_eq!(client.lookup(m.clone(), None).await.expect("lookup"), None);
    client.send(m).await.expect("resent");
    assert_eq!(fake.accepted().len(), 1);
}

#[actix_rt::test]
async fn port_futures_are_send() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    let client = client(&fake);
    let send = client.send(message(Channel::Sms, "a"));
    let lookup = client.lookup(message(Channel::Sms, "a"), None);
    assert_send(&send);
    assert_send(&lookup);
    // Awaited from a task on another actix arbiter, as the engine does.
    let arbiter = actix_rt::Arbiter::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    arbiter.spawn(async move {
        let _ = tx.send(send.await);
    });
    let receipt = rx.await.expect("arbiter answered").expect("sent");
    assert!(receipt.provider_ref.starts_with("SM"));
    drop(lookup);
    arbiter.stop();
}

#[test]
fn fake_runs_without_a_caller_runtime() {
    let fake = FakeTwilio::start(ACCOUNT, TOKEN);
    let client = client(&fake);
    let receipt = actix_rt::System::new()
        .block_on(client.send(message(Channel::Sms, "plain test")))
        .expect("sent");
    assert_eq!(fake.accepted()[0].sid, receipt.provider_ref);
}
