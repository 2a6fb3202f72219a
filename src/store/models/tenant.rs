//! The `tenants` row.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::store::schema::tenants;

/// A business served by this daemon. A single-clinic install has one, `default`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    pub tenant_id: String,
    pub name: String,
    pub profile: String,
    pub timezone: String,
    pub phone: Option<String>,
    pub country: String,
    pub currency: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}
