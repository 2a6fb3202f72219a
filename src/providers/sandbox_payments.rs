//! Payments in the sandbox (SPEC §6): while an install has neither Stripe nor Twilio
//! credentials, deposit links are made up here instead of at Stripe — pointing at the
//! daemon's own `/sandbox/pay/{appointment}` page, where whoever tries the install can
//! "pay" (`webhooks::sandbox_payments`). Nothing leaves the machine; the link's
//! reference starts with `sbx_` so it reads as a sandbox link wherever it is shown.
//!
//! The same idempotency key always gives the same link, as Stripe's `Idempotency-Key`
//! does, so a retried or reconciled request creates nothing new.

use actors::ports::providers::{PaymentLink, PaymentLinkRequest, PaymentProvider, ProviderError};
use actors::ports::BoxFuture;
use actors::resilience::backoff::ErrorClass;
use sha2::{Digest, Sha256};
use url::Url;

/// The path under the public URL where a sandbox deposit is paid.
pub const PAY_PATH: &str = "sandbox/pay";

/// Prefix of every sandbox payment reference.
pub const REF_PREFIX: &str = "sbx_plink_";

/// Makes sandbox payment links under the daemon's public URL.
#[derive(Debug, Clone)]
pub struct SandboxPayments {
    public_url: Url,
}

impl SandboxPayments {
    pub fn new(public_url: Url) -> Self {
        Self { public_url }
    }

    /// The link for `request`: the pay page of its appointment.
    pub fn link_for(&self, request: &PaymentLinkRequest) -> Result<PaymentLink, ProviderError> {
        let mut url = self.public_url.clone();
        url.path_segments_mut()
            .map_err(|()| ProviderError {
                class: ErrorClass::Final,
                message: format!("the public URL {} cannot take a path", self.public_url),
                outcome_unknown: false,
            })?
            .pop_if_empty()
            .extend(PAY_PATH.split('/'))
            .push(&request.appointment_id);
        let digest = Sha256::digest(request.idempotency_key.as_bytes());
        Ok(PaymentLink {
            provider_ref: format!("{REF_PREFIX}{}", &hex::encode(digest)[..24]),
            url: url.to_string(),
        })
    }
}

impl PaymentProvider for SandboxPayments {
    fn create_payment_link(
        &self,
        request: PaymentLinkRequest,
    ) -> BoxFuture<'static, Result<PaymentLink, ProviderError>> {
        let link = self.link_for(&request);
        Box::pin(async move { link })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str) -> PaymentLinkRequest {
        PaymentLinkRequest {
            idempotency_key: key.to_string(),
            amount_cents: 2500,
            currency: "USD".to_string(),
            description: "Deposit".to_string(),
            appointment_id: "0190-appt".to_string(),
            customer_id: "cust".to_string(),
        }
    }

    #[test]
    fn the_link_is_the_appointments_pay_page_under_the_public_url() {
        let sandbox =
            SandboxPayments::new(Url::parse("https://aro.example.com/base/").expect("url"));
        let link = sandbox.link_for(&request("deposit-1")).expect("link");
        assert_eq!(
            link.url,
            "https://aro.example.com/base/sandbox/pay/0190-appt"
        );
        assert!(link.provider_ref.starts_with(REF_PREFIX));
    }

    #[test]
    fn the_same_key_gives_the_same_link_and_another_key_another_reference() {
        let sandbox = SandboxPayments::new(Url::parse("http://127.0.0.1:8080").expect("url"));
        let first = sandbox.link_for(&request("deposit-1")).expect("link");
        assert_eq!(
            first,
            sandbox.link_for(&request("deposit-1")).expect("link")
        );
        assert_ne!(
            first.provider_ref,
            sandbox
                .link_for(&request("deposit-2"))
                .expect("link")
                .provider_ref
        );
    }
}
