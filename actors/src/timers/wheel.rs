//! The in-memory timer wheel: the timers of the near window, ordered by when to wake.
//! Durable timers live in the store; this holds only what is due soon, so a million
//! scheduled reminders cost a row each, not memory.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::ports::store::TimerSpec;

/// Timers keyed by (tenant, key), ordered by wake time.
#[derive(Debug, Default)]
pub struct TimerWheel {
    by_wake: BTreeMap<(DateTime<Utc>, String), TimerSpec>,
    wake_of: HashMap<String, DateTime<Utc>>,
}

/// The wheel's identity for a timer.
pub fn full_key(tenant_id: &str, key: &str) -> String {
    format!("{tenant_id}\u{1f}{key}")
}

impl TimerWheel {
    /// Holds `spec`, to wake at `wake_at` (its due time, or later for a retry).
    /// Replaces any timer with the same key.
    pub fn insert(&mut self, spec: TimerSpec, wake_at: DateTime<Utc>) {
        let key = full_key(&spec.tenant_id, &spec.key);
        self.remove_full(&key);
        self.wake_of.insert(key.clone(), wake_at);
        self.by_wake.insert((wake_at, key), spec);
    }

    pub fn remove(&mut self, tenant_id: &str, key: &str) {
        self.remove_full(&full_key(tenant_id, key));
    }

    fn remove_full(&mut self, key: &str) {
        if let Some(wake) = self.wake_of.remove(key) {
            self.by_wake.remove(&(wake, key.to_string()));
        }
    }

    /// Takes every timer whose wake time is at or before `now`, soonest first.
    pub fn pop_due(&mut self, now: DateTime<Utc>) -> Vec<TimerSpec> {
        let mut due = Vec::new();
        while let Some(entry) = self.by_wake.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, key), spec) = entry.remove_entry();
            self.wake_of.remove(&key);
            due.push(spec);
        }
        due
    }

    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.by_wake.keys().next().map(|(wake, _)| *wake)
    }

    pub fn contains(&self, tenant_id: &str, key: &str) -> bool {
        self.wake_of.contains_key(&full_key(tenant_id, key))
    }

    pub fn len(&self) -> usize {
        self.by_wake.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_wake.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn spec(key: &str, due: DateTime<Utc>) -> TimerSpec {
        TimerSpec {
            tenant_id: "t".into(),
            key: key.into(),
            owner_type: "appointment".into(),
            owner_id: "a".into(),
            kind: "reminder_48h".into(),
            due_at: due,
            payload: serde_json::Value::Null,
        }
    }

    #[test]
    fn pops_in_due_order_and_moves_by_key() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let mut wheel = TimerWheel::default();
        wheel.insert(
            spec("b", t0 + Duration::minutes(2)),
            t0 + Duration::minutes(2),
        );
        wheel.insert(
            spec("a", t0 + Duration::minutes(1)),
            t0 + Duration::minutes(1),
        );
        wheel.insert(
            spec("c", t0 + Duration::minutes(3)),
            t0 + Duration::minutes(3),
        );
        // Moving "c" earlier replaces it.
        wheel.insert(spec("c", t0), t0);
        assert_eq!(wheel.len(), 3);
        assert_eq!(wheel.next_wake(), Some(t0));
        let due: Vec<String> = wheel
            .pop_due(t0 + Duration::minutes(1))
            .into_iter()
            .map(|s| s.key)
            .collect();
        assert_eq!(due, vec!["c", "a"]);
        wheel.remove("t", "b");
        assert!(wheel.is_empty());
        assert!(wheel.pop_due(t0 + Duration::days(1)).is_empty());
    }
}
