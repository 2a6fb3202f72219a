//! Message templates: text with `{variable}` placeholders (`{{` and `}}` for literal
//! braces), parsed once when a profile pack loads, checked against the variables its
//! message kind may use, and rendered with values the engine supplies.

use std::collections::BTreeMap;
use std::fmt;

/// A value a template can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variable {
    /// The customer's first name ("there" when unknown).
    FirstName,
    BusinessName,
    BusinessPhone,
    /// The appointment's date in its zone, e.g. "Tue, Mar 3".
    Date,
    /// The appointment's time in its zone, e.g. "2:30 PM".
    Time,
    /// The service booked, or the pack's word for an appointment.
    Service,
    /// The pack's word for a customer (patient, client…).
    CustomerTerm,
    /// The pack's word for an appointment (appointment, session…).
    AppointmentTerm,
    /// The booking system's cancel link, or the business phone.
    CancelLink,
    /// The booking system's reschedule link, or the business phone.
    RescheduleLink,
    /// Where to book again: the business's booking link, or its phone.
    BookingLink,
    ReviewLink,
    PaymentLink,
    /// The deposit, e.g. "50.00 USD".
    DepositAmount,
}

impl Variable {
    pub const ALL: [Variable; 14] = [
        Variable::FirstName,
        Variable::BusinessName,
        Variable::BusinessPhone,
        Variable::Date,
        Variable::Time,
        Variable::Service,
        Variable::CustomerTerm,
        Variable::AppointmentTerm,
        Variable::CancelLink,
        Variable::RescheduleLink,
        Variable::BookingLink,
        Variable::ReviewLink,
        Variable::PaymentLink,
        Variable::DepositAmount,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variable::FirstName => "first_name",
            Variable::BusinessName => "business_name",
            Variable::BusinessPhone => "business_phone",
            Variable::Date => "date",
            Variable::Time => "time",
            Variable::Service => "service",
            Variable::CustomerTerm => "customer_term",
            Variable::AppointmentTerm => "appointment_term",
            Variable::CancelLink => "cancel_link",
            Variable::RescheduleLink => "reschedule_link",
            Variable::BookingLink => "booking_link",
            Variable::ReviewLink => "review_link",
            Variable::PaymentLink => "payment_link",
            Variable::DepositAmount => "deposit_amount",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every message kind a pack must have a template for.
pub const MESSAGE_KINDS: [&str; 14] = [
    "booking_confirmation",
    "reminder_48h",
    "reminder_24h",
    "confirm_ack",
    "reschedule_reply",
    "cancel_reply",
    "opt_out_confirmation",
    "help_reply",
    "deposit_request",
    "deposit_reminder",
    "deposit_receipt",
    "rebook_offer",
    "rebook_with_deposit",
    "review_request",
];

/// The variables a template of `kind` may use. Keyword replies (opt-out, help) are not
/// about an appointment; links exist only where their message is about them.
pub fn allowed_variables(kind: &str) -> Vec<Variable> {
    use Variable::*;
    let business = [BusinessName, BusinessPhone, CustomerTerm, AppointmentTerm];
    let appointment = [FirstName, Date, Time, Service, CancelLink, RescheduleLink];
    let mut allowed: Vec<Variable> = business.to_vec();
    match kind {
        "opt_out_confirmation" | "help_reply" => {}
        "deposit_request" | "deposit_reminder" => {
            allowed.extend(appointment);
            allowed.extend([PaymentLink, DepositAmount]);
        }
        "deposit_receipt" => {
            allowed.extend(appointment);
            allowed.push(DepositAmount);
        }
        "rebook_offer" => {
            allowed.extend(appointment);
            allowed.push(BookingLink);
        }
        "rebook_with_deposit" => {
            allowed.extend(appointment);
            allowed.extend([BookingLink, DepositAmount]);
        }
        "review_request" => {
            allowed.extend(appointment);
            allowed.push(ReviewLink);
        }
        _ => allowed.extend(appointment),
    }
    allowed
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Variable),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// Why a template's text cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown variable {{{0}}}; known: {known}", known = known_list())]
    UnknownVariable(String),
    #[error("variable {{{variable}}} cannot be used in a {kind} message; allowed: {allowed}")]
    NotAllowed {
        variable: Variable,
        kind: String,
        allowed: String,
    },
    #[error("unclosed {{ at byte {0}")]
    Unclosed(usize),
    #[error("stray }} at byte {0} (write }}}} for a literal brace)")]
    StrayClose(usize),
    #[error("the template is empty")]
    Empty,
}

fn known_list() -> String {
    Variable::ALL.map(Variable::name).join(", ")
}

impl Template {
    /// Parses `source` and checks its variables against those `kind` may use.
    pub fn parse(kind: &str, source: &str) -> Result<Self, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, n)| *n == '{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().is_some_and(|(_, n)| *n == '}') => {
                    chars.next();
                    text.push('}');
                }
                '}' => return Err(TemplateError::StrayClose(at)),
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '}')) => break,
                            Some((_, c)) => name.push(c),
                            None => return Err(TemplateError::Unclosed(at)),
                        }
                    }
                    let name = name.trim();
                    let variable = Variable::parse(name)
                        .ok_or_else(|| TemplateError::UnknownVariable(name.to_string()))?;
                    let allowed = allowed_variables(kind);
                    if !allowed.contains(&variable) {
                        return Err(TemplateError::NotAllowed {
                            variable,
                            kind: kind.to_string(),
                            allowed: allowed
                                .iter()
                                .map(|v| v.name())
                                .collect::<Vec<_>>()
                                .join(", "),
                        });
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Var(variable));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Self {
            source: source.to_string(),
            pieces,
        })
    }

    /// The text as written in the pack.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables the template uses.
    pub fn variables(&self) -> impl Iterator<Item = Variable> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(*v),
            Piece::Text(_) => None,
        })
    }

    /// The text with every variable replaced; a variable without a value renders
    /// empty (the engine supplies every variable a kind allows).
    pub fn render(&self, values: &BTreeMap<Variable, String>) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Var(v) => out.push_str(values.get(v).map(String::as_str).unwrap_or("")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables_and_literal_braces() {
        let t = Template::parse(
            "reminder_48h",
            "Hi {first_name}, {{see}} you {date} at {time}.",
        )
        .expect("parses");
        let values = BTreeMap::from([
            (Variable::FirstName, "Ana".to_string()),
            (Variable::Date, "Tue, Mar 3".to_string()),
            (Variable::Time, "2:30 PM".to_string()),
        ]);
        assert_eq!(
            t.render(&values),
            "Hi Ana, {see} you Tue, Mar 3 at 2:30 PM."
        );
        assert_eq!(t.variables().count(), 3);
    }

    #[test]
    fn unknown_and_misplaced_variables_are_refused() {
        assert!(matches!(
            Template::parse("reminder_48h", "Hi {nmae}"),
            Err(TemplateError::UnknownVariable(n)) if n == "nmae"
        ));
        let err = Template::parse("help_reply", "Your visit is {date}").unwrap_err();
        assert!(
            err.to_string().contains("cannot be used in a help_reply"),
            "{err}"
        );
        assert!(Template::parse("review_request", "{review_link}").is_ok());
        assert!(Template::parse("reminder_24h", "{payment_link}").is_err());
    }

    #[test]
    fn malformed_braces_are_refused() {
        assert_eq!(
            Template::parse("confirm_ack", "Hi {first_name"),
            Err(TemplateError::Unclosed(3))
        );
        assert_eq!(
            Template::parse("confirm_ack", "Hi }"),
            Err(TemplateError::StrayClose(3))
        );
        assert_eq!(
            Template::parse("confirm_ack", "  "),
            Err(TemplateError::Empty)
        );
    }
}
