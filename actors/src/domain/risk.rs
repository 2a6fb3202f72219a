//! The no-show risk score of SPEC §4: 0–100 from a customer's history.
//!
//! min(20 × no-shows, 40) + 30 × (1 − confirmation rate) + 20 × reschedules ÷
//! appointments + 10 if a payment is past due, rounded. A customer with no past
//! appointments has no evidence against them: their confirmation rate counts as 1 and
//! their reschedule ratio as 0.

use serde::{Deserialize, Serialize};

/// What the score is computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskInputs {
    pub no_shows: u32,
    /// Past appointments that asked for a confirmation.
    pub appointments: u32,
    /// Of those, how many the customer confirmed.
    pub confirmations: u32,
    pub reschedules: u32,
    pub payment_past_due: bool,
}

/// low < 40 ≤ medium < 70 ≤ high.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn of(score: u8) -> Self {
        match score {
            0..=39 => Self::Low,
            40..=69 => Self::Medium,
            _ => Self::High,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// The score, 0–100.
pub fn risk_score(inputs: &RiskInputs) -> u8 {
    let no_show_part = (20.0 * f64::from(inputs.no_shows)).min(40.0);
    let (confirmation_rate, reschedule_ratio) = if inputs.appointments == 0 {
        (1.0, 0.0)
    } else {
        let appointments = f64::from(inputs.appointments);
        (
            (f64::from(inputs.confirmations) / appointments).clamp(0.0, 1.0),
            (f64::from(inputs.reschedules) / appointments).clamp(0.0, 1.0),
        )
    };
    let past_due = if inputs.payment_past_due { 10.0 } else { 0.0 };
    let score =
        no_show_part + 30.0 * (1.0 - confirmation_rate) + 20.0 * reschedule_ratio + past_due;
    // In 0..=100 by construction (40 + 30 + 20 + 10).
    score.round().clamp(0.0, 100.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_customer_scores_zero() {
        assert_eq!(risk_score(&RiskInputs::default()), 0);
    }

    #[test]
    fn the_worst_customer_scores_one_hundred() {
        let inputs = RiskInputs {
            no_shows: 9,
            appointments: 10,
            confirmations: 0,
            reschedules: 12,
            payment_past_due: true,
        };
        assert_eq!(risk_score(&inputs), 100);
        assert_eq!(RiskLevel::of(100), RiskLevel::High);
    }

    #[test]
    fn each_term_weighs_as_specified() {
        let two_no_shows = RiskInputs {
            no_shows: 2,
            appointments: 4,
            confirmations: 4,
            ..RiskInputs::default()
        };
        assert_eq!(risk_score(&two_no_shows), 40);
        let half_confirmed = RiskInputs {
            appointments: 4,
            confirmations: 2,
            ..RiskInputs::default()
        };
        assert_eq!(risk_score(&half_confirmed), 15);
        let one_in_three_moved = RiskInputs {
            appointments: 3,
            confirmations: 3,
            reschedules: 1,
            ..RiskInputs::default()
        };
        assert_eq!(risk_score(&one_in_three_moved), 7); // 6.67 rounds up
        let past_due = RiskInputs {
            payment_past_due: true,
            ..RiskInputs::default()
        };
        assert_eq!(risk_score(&past_due), 10);
    }

    #[test]
    fn levels_split_at_forty_and_seventy() {
        assert_eq!(RiskLevel::of(39), RiskLevel::Low);
        assert_eq!(RiskLevel::of(40), RiskLevel::Medium);
        assert_eq!(RiskLevel::of(69), RiskLevel::Medium);
        assert_eq!(RiskLevel::of(70), RiskLevel::High);
    }
}
