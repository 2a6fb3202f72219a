//! The engine's [`PaymentProvider`] port over Stripe's API: `POST /v1/payment_links`
//! with bearer auth, a form body and an `Idempotency-Key`.
//!
//! The link has one line item built inline (`price_data` with `product_data`), quantity
//! 1, and the appointment and customer ids as metadata twice: on the link (Stripe copies
//! it to the Checkout Sessions the link creates, so `checkout.session.completed` carries
//! it) and in `payment_intent_data[metadata]` (so `payment_intent.succeeded` carries it
//! too).
//!
//! Resending is safe: every attempt for one deposit carries the request's
//! `idempotency_key`, and Stripe answers a repeat of a key it has seen (within 24 hours,
//! with the same parameters) with the saved answer of the first request instead of
//! creating a second link. So a timeout after sending is reported as
//! `ErrorClass::Timeout` with `outcome_unknown = true`, and reconciling it is simply
//! sending again with the same key: the answer is the link created the first time, if
//! any. (A key reused with different parameters gets a 400 `idempotency_error`.)
//!
//! Nothing here logs the secret key; links are logged by id only.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::ACCEPT;
use actors::ports::providers::{PaymentLink, PaymentLinkRequest, PaymentProvider, ProviderError};
use actors::ports::BoxFuture;
use actors::resilience::backoff::ErrorClass;
use serde::Deserialize;
use url::Url;

use super::errors;
use crate::providers::http::{self as transport, Answer};

const PROVIDER: &str = "stripe";
/// Stripe's limit on an idempotency key's length.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// The product name used when the request has no description.
const DEFAULT_NAME: &str = "Deposit";

/// Credentials and endpoint for one Stripe account.
#[derive(Clone)]
pub struct StripeSettings {
    /// `sk_live_…` / `sk_test_…` (or a restricted `rk_…` key allowed to write links).
    pub secret_key: String,
    /// `https://api.stripe.com` in production; a fake's address in tests.
    pub api_base: Url,
    /// The longest a request may take, connect to last byte of the answer.
    pub timeout: Duration,
}

impl fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeSettings")
            .field("secret_key", &"********")
            .field("api_base", &self.api_base.as_str())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The form body of a create: Stripe's bracketed names for nested parameters.
fn link_form(request: &PaymentLinkRequest) -> Vec<(&'static str, String)> {
    let name = match request.description.trim() {
        "" => DEFAULT_NAME.to_string(),
        text => text.to_string(),
    };
    vec![
        (
            "line_items[0][price_data][currency]",
            request.currency.trim().to_ascii_lowercase(),
        ),
        (
            "line_items[0][price_data][unit_amount]",
            request.amount_cents.to_string(),
        ),
        ("line_items[0][price_data][product_data][name]", name),
        ("line_items[0][quantity]", "1".to_string()),
        ("metadata[appointment_id]", request.appointment_id.clone()),
        ("metadata[customer_id]", request.customer_id.clone()),
        (
            "payment_intent_data[metadata][appointment_id]",
            request.appointment_id.clone(),
        ),
        (
            "payment_intent_data[metadata][customer_id]",
            request.customer_id.clone(),
        ),
    ]
}

/// Refuses, before sending, what Stripe would refuse anyway.
fn validate(request: &PaymentLinkRequest) -> Result<(), ProviderError> {
    let problem = if request.amount_cents <= 0 {
        Some("the amount must be positive")
    } else if request.currency.trim().len() != 3
        || !request
            .currency
            .trim()
            .chars()
            .all(|c| c.is_ascii_alphabetic())
    {
        Some("the currency must be a three-letter ISO code")
    } else if request.idempotency_key.is_empty()
        || request.idempotency_key.len() > MAX_IDEMPOTENCY_KEY
    {
        Some("the idempotency key must be 1 to 255 characters")
    } else {
        None
    };
    match problem {
        Some(why) => Err(ProviderError {
            class: ErrorClass::ClientError,
            message: format!("stripe payment link not requested: {why}"),
            outcome_unknown: false,
        }),
        None => Ok(()),
    }
}

/// `{api_base}/v1/payment_links`.
fn endpoint(api_base: &Url) -> Result<Url, ProviderError> {
    let mut url = api_base.clone();
    url.set_query(None);
    url.path_segments_mut()
        .map_err(|()| ProviderError {
            class: ErrorClass::ClientError,
            message: format!("stripe api_base {api_base} cannot take a path"),
            outcome_unknown: false,
        })?
        .pop_if_empty()
        .extend(["v1", "payment_links"]);
    Ok(url)
}

/// Stripe's PaymentLink object, the fields we read.
#[derive(Debug, Deserialize)]
struct PaymentLinkObject {
    id: String,
    url: String,
}

/// The error for a non-2xx answer.
fn answer_error(answer: &Answer) -> ProviderError {
    if let Some(redirect) = answer.unexpected_redirect("stripe") {
        return redirect;
    }
    let parsed = answer
        .body
        .as_deref()
        .ok()
        .and_then(errors::StripeApiError::parse);
    errors::from_response(
        answer.status,
        parsed.as_ref(),
        transport::retry_after(&answer.headers),
        errors::parse_should_retry(answer.header("Stripe-Should-Retry")),
    )
}

async fn create_now(
    settings: Arc<StripeSettings>,
    request: PaymentLinkRequest,
) -> Result<PaymentLink, ProviderError> {
    validate(&request)?;
    let url = endpoint(&settings.api_base)?;
    let form = link_form(&request);
    tracing::debug!(appointment_id = %request.appointment_id, amount_cents = request.amount_cents, "stripe: creating payment link");
    let client = transport::http_client(settings.timeout);
    let response = client
        .post(url.as_str())
        .bearer_auth(&settings.secret_key)
        .insert_header((ACCEPT, "application/json"))
        .insert_header(("Idempotency-Key", request.idempotency_key.as_str()))
        .send_form(&form)
        .await
        .map_err(|e| transport::transport_error(PROVIDER, &e, true))?;
    let answer = Answer::read(response).await;
    let result = if answer.is_success() {
        answer
            .json::<PaymentLinkObject>(PROVIDER, true)
            .map(|link| PaymentLink {
                provider_ref: link.id,
                url: link.url,
            })
    } else {
        Err(answer_error(&answer))
    };
    let replayed = answer.header("Idempotent-Replayed") == Some("true");
    match &result {
        Ok(link) => {
            tracing::info!(appointment_id = %request.appointment_id, link = %link.provider_ref, replayed, "stripe: payment link ready");
        }
        Err(error) => {
            tracing::warn!(appointment_id = %request.appointment_id, class = ?error.class, outcome_unknown = error.outcome_unknown, error = %error.message, "stripe: payment link failed");
        }
    }
    result
}

/// The Stripe payment adapter. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct StripePayments {
    settings: Arc<StripeSettings>,
}

impl StripePayments {
    pub fn new(settings: StripeSettings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }

    pub fn settings(&self) -> &StripeSettings {
        &self.settings
    }
}

impl PaymentProvider for StripePayments {
    /// `POST {api_base}/v1/payment_links`. A timeout or a connection lost after the
    /// request was written is reported with `outcome_unknown`; sending the same request
    /// again (same idempotency key) is the reconciliation.
    fn create_payment_link(
        &self,
        request: PaymentLinkRequest,
    ) -> BoxFuture<'static, Result<PaymentLink, ProviderError>> {
        let settings = Arc::clone(&self.settings);
        transport::on_local_set(PROVIDER, move || create_now(settings, request), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> PaymentLinkRequest {
        PaymentLinkRequest {
            idempotency_key: "deposit-appt-1".to_string(),
            amount_cents: 5000,
            currency: "USD".to_string(),
            description: "Deposit for Consultation".to_string(),
            appointment_id: "appt-1".to_string(),
            customer_id: "cust-9".to_string(),
        }
    }

    #[test]
    fn form_uses_stripes_nested_names() {
        let form = link_form(&request());
        let get = |name: &str| {
            form.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("line_items[0][price_data][currency]"), Some("usd"));
        assert_eq!(get("line_items[0][price_data][unit_amount]"), Some("5000"));
        assert_eq!(
            get("line_items[0][price_data][product_data][name]"),
            Some("Deposit for Consultation")
        );
        assert_eq!(get("line_items[0][quantity]"), Some("1"));
        assert_eq!(get("metadata[appointment_id]"), Some("appt-1"));
        assert_eq!(get("metadata[customer_id]"), Some("cust-9"));
        assert_eq!(
            get("payment_intent_data[metadata][appointment_id]"),
            Some("appt-1")
        );
        let encoded = serde_urlencoded::to_string(&form).expect("encodes");
        assert!(
            encoded.contains("line_items%5B0%5D%5Bquantity%5D=1"),
            "{encoded}"
        );
    }

    #[test]
    fn empty_description_gets_a_name() {
        let mut r = request();
        r.description = "  ".to_string();
        let form = link_form(&r);
        assert!(form.contains(&(
            "line_items[0][price_data][product_data][name]",
            DEFAULT_NAME.to_string()
        )));
    }

    #[test]
    fn invalid_requests_are_refused_before_sending() {
        assert!(validate(&request()).is_ok());
        let mut zero = request();
        zero.amount_cents = 0;
        let mut currency = request();
        currency.currency = "dollars".to_string();
        let mut key = request();
        key.idempotency_key = "k".repeat(256);
        for bad in [zero, currency, key] {
            let err = validate(&bad).expect_err("refused");
            assert_eq!(err.class, ErrorClass::ClientError);
            assert!(!err.outcome_unknown);
        }
    }

    #[test]
    fn endpoint_appends_to_the_base() {
        let base = Url::parse("https://api.stripe.com").expect("url");
        assert_eq!(
            endpoint(&base).expect("url").as_str(),
            "https://api.stripe.com/v1/payment_links"
        );
        let proxied = Url::parse("http://127.0.0.1:9/stripe/?x=1").expect("url");
        assert_eq!(
            endpoint(&proxied).expect("url").as_str(),
            "http://127.0.0.1:9/stripe/v1/payment_links"
        );
    }

    #[test]
    fn debug_hides_the_secret_key() {
        let settings = StripeSettings {
            secret_key: "sk_test_secret".to_string(),
            api_base: Url::parse("https://api.stripe.com").expect("url"),
            timeout: Duration::from_secs(10),
        };
        assert!(!format!("{settings:?}").contains("sk_test_secret"));
    }
}
