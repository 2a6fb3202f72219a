//! Integration secrets (provider credentials and the like) in `integration_secrets`,
//! sealed with AES-256-GCM (`crypto::seal`) under a key derived from the master key for
//! this purpose only (`"aro integration secrets v1"`). The associated data binds each
//! value to its tenant and name, so a sealed value copied onto another row does not
//! open. `key_id` is the master key's public fingerprint: a value sealed under another
//! key is reported as such, not as damaged.
//!
//! Values never leave this module except through [`get_secret`], wrapped in
//! [`Secret`]; listing shows names, key ids and times only. [`rotate_key`] re-seals
//! every value under a new master key in one transaction (all or nothing); the
//! operator's procedure around it is `aro secrets rotate-key` (docs/security.md).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::json;

use super::models::SecretRow;
use crate::audit::{self, Actor, AuditError, NewEntry};
use crate::config::Secret;
use crate::crypto::{self, CryptoError, Key, NONCE_LEN};
use crate::store::schema::integration_secrets;
use crate::store::tenant_queries::DEFAULT_TENANT;
use crate::store::{Backend, DbConnection};

/// The HKDF purpose of the key that seals integration secrets.
pub const PURPOSE: &str = "aro integration secrets v1";
const MAX_NAME: usize = 100;
/// Largest value accepted (provider credentials are far smaller).
pub const MAX_VALUE: usize = 64 * 1024;

/// Everything storing, reading or re-keying secrets can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "a secret name has 1 to {MAX_NAME} characters: letters, digits and . _ - \
         (e.g. twilio.auth_token)"
    )]
    InvalidName,
    #[error("the secret value is empty")]
    Empty,
    #[error("the secret value is larger than {MAX_VALUE} bytes")]
    TooLarge,
    #[error(
        "secret {name:?} is sealed under master key {stored}, not under the current key \
         {current}; use the master key it was stored with"
    )]
    WrongKey {
        name: String,
        stored: String,
        current: String,
    },
    #[error("secret {name:?}: {source}")]
    Crypto {
        name: String,
        #[source]
        source: CryptoError,
    },
    #[error("secret {0:?} is not valid UTF-8")]
    NotUtf8(String),
    #[error("the new master key is the current one")]
    SameKey,
    #[error("secrets query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// The public fingerprint of a master key, as stored in `key_id`.
pub fn key_id(master: &Key) -> String {
    hex::encode(master.id())
}

/// A secret's name, checked.
pub fn validate_name(name: &str) -> Result<(), SecretsError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SecretsError::InvalidName)
    }
}

fn data_key(master: &Key) -> Key {
    master.derive(PURPOSE, b"")
}

fn associated_data(tenant_id: &str, name: &str) -> Vec<u8> {
    let mut aad = b"aro-secret-v1\0".to_vec();
    aad.extend_from_slice(tenant_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(name.as_bytes());
    aad
}

/// Seals `value` for (tenant, name): the nonce and `version ‖ ciphertext ‖ tag`.
fn seal_value(
    master: &Key,
    tenant_id: &str,
    name: &str,
    value: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), SecretsError> {
    let sealed = crypto::seal(&data_key(master), value, &associated_data(tenant_id, name))
        .map_err(|source| SecretsError::Crypto {
            name: name.to_string(),
            source,
        })?;
    let nonce = sealed[1..1 + NONCE_LEN].to_vec();
    let mut ciphertext = Vec::with_capacity(sealed.len() - NONCE_LEN);
    ciphertext.push(sealed[0]);
    ciphertext.extend_from_slice(&sealed[1 + NONCE_LEN..]);
    Ok((nonce, ciphertext))
}

/// Opens a row sealed under `master`.
fn open_row(master: &Key, row: &SecretRow) -> Result<Vec<u8>, SecretsError> {
    let current = key_id(master);
    if row.key_id != current {
        return Err(SecretsError::WrongKey {
            name: row.name.clone(),
            stored: row.key_id.clone(),
            current,
        });
    }
    let crypto_err = |source| SecretsError::Crypto {
        name: row.name.clone(),
        source,
    };
    let Some((version, rest)) = row.ciphertext.split_first() else {
        return Err(crypto_err(CryptoError::Truncated { len: 0 }));
    };
    if row.nonce.len() != NONCE_LEN {
        return Err(crypto_err(CryptoError::Truncated {
            len: row.nonce.len(),
        }));
    }
    let mut sealed = Vec::with_capacity(1 + NONCE_LEN + rest.len());
    sealed.push(*version);
    sealed.extend_from_slice(&row.nonce);
    sealed.extend_from_slice(rest);
    crypto::open(
        &data_key(master),
        &sealed,
        &associated_data(&row.tenant_id, &row.name),
    )
    .map_err(crypto_err)
}

/// Whether [`set_secret`] created the secret or replaced its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    Created,
    Updated,
}

/// Seals and stores a value (replacing any earlier one), with a `secrets.set` audit
/// entry, in one transaction.
pub fn set_secret(
    conn: &mut DbConnection,
    master: &Key,
    tenant_id: &str,
    name: &str,
    value: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<SetOutcome, SecretsError> {
    validate_name(name)?;
    if value.is_empty() {
        return Err(SecretsError::Empty);
    }
    if value.len() > MAX_VALUE {
        return Err(SecretsError::TooLarge);
    }
    let (nonce, ciphertext) = seal_value(master, tenant_id, name, value.as_bytes())?;
    let row = SecretRow {
        tenant_id: tenant_id.to_string(),
        name: name.to_string(),
        key_id: key_id(master),
        nonce,
        ciphertext,
        updated_at: now.naive_utc(),
    };
    conn.transaction(|conn| {
        let updated = diesel::update(
            integration_secrets::table
                .filter(integration_secrets::tenant_id.eq(tenant_id))
                .filter(integration_secrets::name.eq(name)),
        )
        .set((
            integration_secrets::key_id.eq(&row.key_id),
            integration_secrets::nonce.eq(&row.nonce),
            integration_secrets::ciphertext.eq(&row.ciphertext),
            integration_secrets::updated_at.eq(row.updated_at),
        ))
        .execute(conn)?;
        let outcome = if updated == 0 {
            diesel::insert_into(integration_secrets::table)
                .values(&row)
                .execute(conn)?;
            SetOutcome::Created
        } else {
            SetOutcome::Updated
        };
        audit::record(
            conn,
            &NewEntry::new(tenant_id, actor.clone(), "secrets.set")
                .at(now)
                .subject("secret", name)
                .details(json!({
                    "created": outcome == SetOutcome::Created,
                    "keyId": row.key_id,
                })),
        )?;
        Ok(outcome)
    })
}

/// Removes a tenant's secret, with a `secrets.deleted` audit entry, in one transaction;
/// `false` when there was none (and nothing is audited).
pub fn delete_secret(
    conn: &mut DbConnection,
    tenant_id: &str,
    name: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<bool, SecretsError> {
    validate_name(name)?;
    conn.transaction(|conn| {
        let deleted = diesel::delete(
            integration_secrets::table
                .filter(integration_secrets::tenant_id.eq(tenant_id))
                .filter(integration_secrets::name.eq(name)),
        )
        .execute(conn)?;
        if deleted > 0 {
            audit::record(
                conn,
                &NewEntry::new(tenant_id, actor.clone(), "secrets.deleted")
                    .at(now)
                    .subject("secret", name),
            )?;
        }
        Ok(deleted > 0)
    })
}

/// The value of a tenant's secret, or `None` when it is not set.
pub fn get_secret(
    conn: &mut DbConnection,
    master: &Key,
    tenant_id: &str,
    name: &str,
) -> Result<Option<Secret<String>>, SecretsError> {
    let row = integration_secrets::table
        .filter(integration_secrets::tenant_id.eq(tenant_id))
        .filter(integration_secrets::name.eq(name))
        .select(SecretRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let plain = open_row(master, &row)?;
    String::from_utf8(plain)
        .map(|text| Some(Secret::new(text)))
        .map_err(|_| SecretsError::NotUtf8(row.name.clone()))
}

/// What `secrets list` shows: never the value.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct SecretInfo {
    pub tenant_id: String,
    pub name: String,
    pub key_id: String,
    pub updated_at: NaiveDateTime,
}

/// A tenant's secrets by name (every tenant's with `None`).
pub fn list_secrets(
    conn: &mut DbConnection,
    tenant_id: Option<&str>,
) -> Result<Vec<SecretInfo>, SecretsError> {
    let mut query = integration_secrets::table
        .select((
            integration_secrets::tenant_id,
            integration_secrets::name,
            integration_secrets::key_id,
            integration_secrets::updated_at,
        ))
        .order((integration_secrets::tenant_id, integration_secrets::name))
        .into_boxed();
    if let Some(tenant_id) = tenant_id {
        query = query.filter(integration_secrets::tenant_id.eq(tenant_id.to_string()));
    }
    Ok(query.load(conn)?)
}

/// What [`rotate_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RotateReport {
    /// Values opened with the old key and sealed under the new one.
    pub resealed: usize,
    /// Values already under the new key (an earlier, interrupted rotation).
    pub already_new: usize,
}

/// Re-seals every secret of every tenant from `old` to `new` in one transaction, with
/// a `secrets.key_rotated` audit entry per tenant. A value under neither key stops the
/// rotation and changes nothing.
pub fn rotate_key(
    conn: &mut DbConnection,
    old: &Key,
    new: &Key,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<RotateReport, SecretsError> {
    let (old_id, new_id) = (key_id(old), key_id(new));
    if old_id == new_id {
        return Err(SecretsError::SameKey);
    }
    conn.transaction(|conn| {
        match conn.backend() {
            Backend::Postgres => {
                conn.batch_execute("LOCK TABLE integration_secrets IN EXCLUSIVE MODE")?
            }
            Backend::Sqlite => {
                conn.batch_execute("UPDATE integration_secrets SET name = name WHERE 1 = 0")?
            }
        }
        let rows: Vec<SecretRow> = integration_secrets::table
            .select(SecretRow::as_select())
            .load(conn)?;
        let mut report = RotateReport::default();
        let mut per_tenant: BTreeMap<String, usize> = BTreeMap::new();
        for row in &rows {
            if row.key_id == new_id {
                open_row(new, row)?;
                report.already_new += 1;
                continue;
            }
            let plain = open_row(old, row)?;
            let (nonce, ciphertext) = seal_value(new, &row.tenant_id, &row.name, &plain)?;
            diesel::update(
                integration_secrets::table
                    .filter(integration_secrets::tenant_id.eq(&row.tenant_id))
                    .filter(integration_secrets::name.eq(&row.name)),
            )
            .set((
                integration_secrets::key_id.eq(&new_id),
                integration_secrets::nonce.eq(nonce),
                integration_secrets::ciphertext.eq(ciphertext),
            ))
            .execute(conn)?;
            report.resealed += 1;
            *per_tenant.entry(row.tenant_id.clone()).or_default() += 1;
        }
        if per_tenant.is_empty() {
            per_tenant.insert(DEFAULT_TENANT.to_string(), 0);
        }
        for (tenant_id, count) in per_tenant {
            audit::record(
                conn,
                &NewEntry::new(tenant_id, actor.clone(), "secrets.key_rotated")
                    .at(now)
                    .details(json!({
                        "resealed": count,
                        "fromKeyId": old_id,
                        "toKeyId": new_id,
                    })),
            )?;
        }
        Ok(report)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_for(master: &Key, tenant: &str, name: &str, value: &str) -> SecretRow {
        let (nonce, ciphertext) = seal_value(master, tenant, name, value.as_bytes()).expect("seal");
        SecretRow {
            tenant_id: tenant.into(),
            name: name.into(),
            key_id: key_id(master),
            nonce,
            ciphertext,
            updated_at: Utc::now().naive_utc(),
        }
    }

    #[test]
    fn sealed_rows_open_only_with_their_key_and_place() {
        let key = Key::from_bytes([7; 32]);
        let row = row_for(&key, "default", "stripe.secret_key", "sk_live_123");
        assert_eq!(row.nonce.len(), NONCE_LEN);
        assert!(!row
            .ciphertext
            .windows(b"sk_live_123".len())
            .any(|w| w == b"sk_live_123"));
        assert_eq!(open_row(&key, &row).expect("open"), b"sk_live_123");

        let other = Key::from_bytes([8; 32]);
        assert!(matches!(
            open_row(&other, &row),
            Err(SecretsError::WrongKey { .. })
        ));

        let mut moved = row.clone();
        moved.name = "twilio.auth_token".into();
        assert!(matches!(
            open_row(&key, &moved),
            Err(SecretsError::Crypto { .. })
        ));
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("twilio.auth_token").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("has space").is_err());
        assert!(validate_name(&"x".repeat(101)).is_err());
    }
}
