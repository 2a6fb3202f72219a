//! The installer's live connection test: for each provider given credentials, the same
//! authenticated request `aro diagnose` makes (`diagnose::integrations`), so a typo in
//! a token is found while the operator is still at the prompt, not when the first
//! reminder fails. Providers without credentials are reported as sandbox.

use crate::config::Config;
use crate::ops::diagnose::integrations::check_all;
use crate::ops::diagnose::{Check, Status};

/// One provider's verdict.
#[derive(Debug, Clone)]
pub struct ConnectionResult {
    /// The provider's name, e.g. `Twilio`.
    pub provider: &'static str,
    /// The configuration keys that switch it to sandbox when cleared.
    pub keys: &'static [&'static str],
    pub check: Check,
}

impl ConnectionResult {
    /// The provider was configured and the request did not succeed.
    pub fn failed(&self) -> bool {
        self.check.status == Status::Fail
    }

    /// One line for the terminal: the verdict, what was found and, on failure, what to do.
    pub fn line(&self) -> String {
        let mark = if self.failed() { "✗" } else { "✓" };
        let mut line = format!("{mark} {}: {}", self.provider, self.check.summary);
        if let (true, Some(what)) = (self.failed(), &self.check.recommendation) {
            line.push_str(&format!("\n    → {what}"));
        }
        line
    }
}

/// Calls each configured provider once (at the same time) and answers one result per
/// provider, in the order Calendly, Twilio, Stripe.
pub fn test_connections(config: &Config) -> Vec<ConnectionResult> {
    let probes = actix_web::rt::System::new().block_on(check_all(config));
    probes
        .into_iter()
        .filter_map(|probe| {
            let (provider, keys): (&'static str, &'static [&'static str]) =
                match probe.check.id.as_str() {
                    "integration.calendly" => (
                        "Calendly",
                        &["calendly.token", "calendly.signing_key"] as &[&str],
                    ),
                    "integration.twilio" => (
                        "Twilio",
                        &["twilio.account_sid", "twilio.auth_token", "twilio.from"],
                    ),
                    "integration.stripe" => {
                        ("Stripe", &["stripe.secret_key", "stripe.webhook_secret"])
                    }
                    _ => return None,
                };
            Some(ConnectionResult {
                provider,
                keys,
                check: probe.check,
            })
        })
        .collect()
}
