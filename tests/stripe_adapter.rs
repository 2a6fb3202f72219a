//! `StripePayments` against the fake Stripe over real HTTP: the wire format of a payment
//! link, Stripe's idempotency (a retry returns the same link; a timed-out request is
//! reconciled by sending it again), and how each kind of failure is classified.

#[path = "fakes/stripe.rs"]
mod fake_stripe;

use std::time::Duration;

use actors::ports::providers::{PaymentLinkRequest, PaymentProvider, ProviderError};
use actors::resilience::backoff::ErrorClass;
use aro::providers::stripe::{StripePayments, StripeSettings};
use fake_stripe::{Failure, FakeStripe};
use url::Url;

const KEY: &str = "sk_test_51Fake0123456789abcdefghijklmnop";

fn settings(base: &str, key: &str, timeout: Duration) -> StripeSettings {
    StripeSettings {
        secret_key: key.to_string(),
        api_base: Url::parse(base).expect("base url"),
        timeout,
    }
}

fn client(fake: &FakeStripe) -> StripePayments {
    StripePayments::new(settings(&fake.base_url(), KEY, Duration::from_secs(5)))
}

fn request(key: &str) -> PaymentLinkRequest {
    PaymentLinkRequest {
        idempotency_key: key.to_string(),
        amount_cents: 5000,
        currency: "USD".to_string(),
        description: "Deposit: Consultation on 20 March".to_string(),
        appointment_id: "0195b2c4-7a10-7d3e-9f21-4c5d6e7f8a9b".to_string(),
        customer_id: "0195b2c4-1111-7d3e-9f21-000000000042".to_string(),
    }
}

async fn create_err(client: &StripePayments, r: PaymentLinkRequest) -> ProviderError {
    client
        .create_payment_link(r)
        .await
        .expect_err("create should fail")
}

#[actix_rt::test]
async fn create_speaks_stripes_wire_format() {
    let fake = FakeStripe::start(KEY);
    let r = request("deposit-1");
    let link = client(&fake)
        .create_payment_link(r.clone())
        .await
        .expect("created");

    let links = fake.links();
    assert_eq!(links.len(), 1);
    assert_eq!(link.provider_ref, links[0].id);
    assert!(link.provider_ref.starts_with("plink_"), "{link:?}");
    assert_eq!(link.url, links[0].url);
    assert!(link.url.starts_with("https://buy.stripe.com/"), "{link:?}");

    let log = fake.requests();
    assert_eq!(log.len(), 1);
    let sent = &log[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/payment_links");
    assert!(
        sent.authorized && sent.bearer,
        "bearer auth with the secret key"
    );
    assert!(sent
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")));
    assert_eq!(sent.idempotency_key.as_deref(), Some("deposit-1"));
    assert_eq!(
        sent.field("line_items[0][price_data][currency]"),
        Some("usd")
    );
    assert_eq!(
        sent.field("line_items[0][price_data][unit_amount]"),
        Some("5000")
    );
    assert_eq!(
        sent.field("line_items[0][price_data][product_data][name]"),
        Some("Deposit: Consultation on 20 March")
    );
    assert_eq!(sent.field("line_items[0][quantity]"), Some("1"));
    assert_eq!(
        sent.field("metadata[appointment_id]"),
        Some(r.appointment_id.as_str())
    );
    assert_eq!(
        sent.field("metadata[customer_id]"),
        Some(r.customer_id.as_str())
    );
    assert_eq!(
        sent.field("payment_intent_data[metadata][appointment_id]"),
        Some(r.appointment_id.as_str())
    );

    let stored = &links[0];
    assert_eq!(stored.currency, "usd");
    assert_eq!(stored.unit_amount, 5000);
    assert_eq!(stored.quantity, 1);
    assert_eq!(
        stored.metadata.get("appointment_id"),
        Some(&r.appointment_id)
    );
    assert_eq!(
        stored.payment_intent_metadata.get("customer_id"),
        Some(&r.customer_id)
    );
}

#[actix_rt::test]
async fn a_retry_with_the_same_key_returns_the_same_link() {
    let fake = FakeStripe::start(KEY);
    let client = client(&fake);
    let first = client
        .create_payment_link(request("deposit-2"))
        .await
        .expect("created");
    let again = client
        .create_payment_link(request("deposit-2"))
        .await
        .expect("replayed");
    assert_eq!(first, again);
    assert_eq!(fake.links().len(), 1, "no second link");
    let log = fake.requests();
    assert_eq!(log.len(), 2);
    assert!(!log[0].replayed);
    assert!(log[1].replayed, "answered from Stripe's idempotency store");

    // Another key is another link.
    let other = client
        .create_payment_link(request("deposit-3"))
        .await
        .expect("created");
    assert_ne!(other.provider_ref, first.provider_ref);
    assert_eq!(fake.links().len(), 2);
}

#[actix_rt::test]
async fn the_same_key_with_other_parameters_is_a_client_error() {
    let fake = FakeStripe::start(KEY);
    let client = client(&fake);
    client
        .create_payment_link(request("deposit-4"))
        .await
        .expect("created");
    let mut changed = request("deposit-4");
    changed.amount_cents = 7500;
    let err = create_err(&client, changed).await;
    assert_eq!(err.class, ErrorClass::ClientError);
    assert!(!err.class.is_retryable());
    assert!(err.message.contains("idempotency_error"), "{}", err.message);
    assert_eq!(fake.links().len(), 1);
}

#[actix_rt::test]
async fn server_error_is_retryable_and_the_retry_creates_one_link() {
    let fake = FakeStripe::start(KEY);
    fake.fail_next(1, Failure::Status500);
    let client = client(&fake);
    let err = create_err(&client, request("deposit-5")).await;
    assert_eq!(err.class, ErrorClass::ServerError);
    assert!(err.class.is_retryable());
    assert!(!err.outcome_unknown);
    assert!(err.message.contains("api_error"), "{}", err.message);
    assert!(fake.links().is_empty());
    client
        .create_payment_link(request("deposit-5"))
        .await
        .expect("retry created");
    assert_eq!(fake.links().len(), 1);
}

#[actix_rt::test]
async fn rate_limit_carries_retry_after() {
    let fake = FakeStripe::start(KEY);
    fake.fail_next(
        1,
        Failure::RateLimited {
            retry_after_secs: 7,
        },
    );
    let err = create_err(&client(&fake), request("deposit-6")).await;
    assert_eq!(
        err.class,
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert!(!err.outcome_unknown);
}

#[actix_rt::test]
async fn lock_timeout_conflict_is_retryable() {
    let fake = FakeStripe::start(KEY);
    fake.fail_next(1, Failure::LockTimeout);
    let err = create_err(&client(&fake), request("deposit-7")).await;
    assert_eq!(err.class, ErrorClass::ServerError);
    assert!(err.message.contains("lock_timeout"), "{}", err.message);
}

#[actix_rt::test]
async fn card_error_is_final_and_replayed_for_the_same_key() {
    let fake = FakeStripe::start(KEY);
    fake.fail_next(
        1,
        Failure::CardError {
            code: "card_declined".to_string(),
        },
    );
    let client = client(&fake);
    let err = create_err(&client, request("deposit-8")).await;
    assert_eq!(err.class, ErrorClass::Final);
    assert!(!err.class.is_retryable());
    assert!(err.message.contains("card_declined"), "{}", err.message);
    // Stripe saved that answer under the key: the same request gets it again.
    let again = create_err(&client, request("deposit-8")).await;
    assert_eq!(again.class, ErrorClass::Final);
    assert!(fake.requests()[1].replayed);
    assert!(fake.links().is_empty());
}

#[actix_rt::test]
async fn wrong_key_is_a_client_error_and_not_echoed() {
    let fake = FakeStripe::start(KEY);
    let client = StripePayments::new(settings(
        &fake.base_url(),
        "sk_test_wrongwrongwrongwrong",
        Duration::from_secs(5),
    ));
    let err = create_err(&client, request("deposit-9")).await;
    assert_eq!(err.class, ErrorClass::ClientError);
    assert!(!err.outcome_unknown);
    assert!(err.message.contains("401"), "{}", err.message);
    assert!(!err.message.contains("sk_test_wrongwrongwrongwrong"));
    assert!(!fake.requests()[0].authorized);
    assert!(fake.links().is_empty());
}

#[actix_rt::test]
async fn lost_answer_times_out_and_a_resend_returns_the_link() {
    let fake = FakeStripe::start(KEY);
    fake.fail_next(1, Failure::Hang { secs: 3 });
    let client = StripePayments::new(settings(&fake.base_url(), KEY, Duration::from_millis(600)));
    let err = create_err(&client, request("deposit-10")).await;
    assert_eq!(err.class, ErrorClass::Timeout);
    assert!(err.outcome_unknown, "the request was written: {err:?}");
    assert_eq!(fake.links().len(), 1, "Stripe did create it");

    // Reconciling is resending with the same key.
    let link = client
        .create_payment_link(request("deposit-10"))
        .await
        .expect("replayed");
    assert_eq!(link.provider_ref, fake.links()[0].id);
    assert_eq!(fake.links().len(), 1, "nothing was created twice");
}

#[actix_rt::test]
async fn closed_port_is_a_network_error_with_known_outcome() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let client = StripePayments::new(settings(
        &format!("http://127.0.0.1:{port}"),
        KEY,
        Duration::from_secs(2),
    ));
    let err = create_err(&client, request("deposit-11")).await;
    assert_eq!(err.class, ErrorClass::Network);
    assert!(err.class.is_retryable());
    assert!(!err.outcome_unknown, "nothing was sent: {err:?}");
}

#[actix_rt::test]
async fn invalid_requests_are_not_sent() {
    let fake = FakeStripe::start(KEY);
    let mut r = request("deposit-12");
    r.amount_cents = 0;
    let err = create_err(&client(&fake), r).await;
    assert_eq!(err.class, ErrorClass::ClientError);
    assert!(fake.requests().is_empty());
}

#[actix_rt::test]
async fn port_futures_are_send() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let fake = FakeStripe::start(KEY);
    let create = client(&fake).create_payment_link(request("deposit-13"));
    assert_send(&create);
    // Awaited from a task on another actix arbiter, as the engine does.
    let arbiter = actix_rt::Arbiter::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    arbiter.spawn(async move {
        let _ = tx.send(create.await);
    });
    let link = rx.await.expect("arbiter answered").expect("created");
    assert!(link.provider_ref.starts_with("plink_"));
    arbiter.stop();
}

#[test]
fn fake_runs_without_a_caller_runtime() {
    let fake = FakeStripe::start(KEY);
    let link = actix_rt::System::new()
        .block_on(client(&fake).create_payment_link(request("deposit-14")))
        .expect("created");
    assert_eq!(fake.links()[0].id, link.provider_ref);
}
