//! The audit chain's canonical encoding and hash.
//!
//! `hash = hex(SHA-256(encoding))` where the encoding is the tag `aro-audit-v1`, then
//! each field in this order — prev_hash, seq (decimal), tenant_id, occurred_at
//! (`YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC), actor_type, actor_id, action, subject_type,
//! subject_id, details — as a 64-bit big-endian length followed by its UTF-8 bytes; an
//! absent optional field is the single byte 0, a present one the byte 1 then its length
//! and bytes. Lengths make the encoding unambiguous (no field can borrow bytes from the
//! next). `details` is hashed exactly as stored; it is written as canonical JSON
//! ([`canonical_json`]: object keys sorted, no whitespace).

use chrono::NaiveDateTime;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const TAG: &[u8] = b"aro-audit-v1";

/// The fields an entry's hash covers.
#[derive(Debug, Clone, Copy)]
pub struct HashInput<'a> {
    pub prev_hash: &'a str,
    pub seq: i64,
    pub tenant_id: &'a str,
    pub occurred_at: NaiveDateTime,
    pub actor_type: &'a str,
    pub actor_id: &'a str,
    pub action: &'a str,
    pub subject_type: Option<&'a str>,
    pub subject_id: Option<&'a str>,
    pub details: &'a str,
}

/// The hex SHA-256 of the entry's canonical encoding.
pub fn entry_hash(input: &HashInput<'_>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(TAG);
    field(&mut hasher, input.prev_hash.as_bytes());
    field(&mut hasher, input.seq.to_string().as_bytes());
    field(&mut hasher, input.tenant_id.as_bytes());
    field(
        &mut hasher,
        input
            .occurred_at
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string()
            .as_bytes(),
    );
    field(&mut hasher, input.actor_type.as_bytes());
    field(&mut hasher, input.actor_id.as_bytes());
    field(&mut hasher, input.action.as_bytes());
    optional(&mut hasher, input.subject_type);
    optional(&mut hasher, input.subject_id);
    field(&mut hasher, input.details.as_bytes());
    hex::encode(hasher.finalize())
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

fn optional(hasher: &mut Sha256, value: Option<&str>) {
    match value {
        None => hasher.update([0u8]),
        Some(text) => {
            hasher.update([1u8]);
            field(hasher, text.as_bytes());
        }
    }
}

/// JSON with object keys sorted at every level and no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(inner) = map.get(key) {
                    write_canonical(inner, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(details: &str) -> HashInput<'_> {
        HashInput {
            prev_hash: GENESIS,
            seq: 1,
            tenant_id: "default",
            occurred_at: chrono::DateTime::from_timestamp(1_800_000_000, 123_456_000)
                .expect("valid")
                .naive_utc(),
            actor_type: "user",
            actor_id: "u1",
            action: "auth.login.succeeded",
            subject_type: None,
            subject_id: None,
            details,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"d": [1, {"z": 1, "y": 2}], "c": "x"}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = input("{}");
        let h = entry_hash(&base);
        assert_eq!(h.len(), 64);
        assert_eq!(h, entry_hash(&base), "deterministic");
        let variants = [
            HashInput {
                prev_hash: "1",
                ..base
            },
            HashInput { seq: 2, ..base },
            HashInput {
                tenant_id: "other",
                ..base
            },
            HashInput {
                occurred_at: base.occurred_at + chrono::Duration::microseconds(1),
                ..base
            },
            HashInput {
                actor_type: "token",
                ..base
            },
            HashInput {
                actor_id: "u2",
                ..base
            },
            HashInput {
                action: "auth.logout",
                ..base
            },
            HashInput {
                subject_type: Some("user"),
                ..base
            },
            HashInput {
                subject_id: Some(""),
                ..base
            },
            HashInput {
                details: r#"{"a":1}"#,
                ..base
            },
        ];
        for variant in variants {
            assert_ne!(entry_hash(&variant), h, "{variant:?}");
        }
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let a = HashInput {
            actor_type: "us",
            actor_id: "eru1",
            ..input("{}")
        };
        let b = HashInput {
            actor_type: "user",
            actor_id: "u1",
            ..input("{}")
        };
        assert_ne!(entry_hash(&a), entry_hash(&b));
        let none = HashInput {
            subject_type: None,
            ..input("{}")
        };
        let empty = HashInput {
            subject_type: Some(""),
            ..input("{}")
        };
        assert_ne!(entry_hash(&none), entry_hash(&empty));
    }
}
