//! Queries on `tenants`.

use diesel::prelude::*;

use super::connection::DbConnection;
use super::error::StoreError;
use super::models::Tenant;
use super::schema::tenants;

/// The tenant of a single-business install.
pub const DEFAULT_TENANT: &str = "default";

pub fn find(conn: &mut DbConnection, tenant_id: &str) -> Result<Option<Tenant>, StoreError> {
    Ok(tenants::table
        .find(tenant_id)
        .select(Tenant::as_select())
        .first(conn)
        .optional()?)
}

/// Inserts `tenant` unless a tenant with its id exists; returns the stored row.
pub fn ensure(conn: &mut DbConnection, tenant: &Tenant) -> Result<Tenant, StoreError> {
    if let Some(existing) = find(conn, &tenant.tenant_id)? {
        return Ok(existing);
    }
    diesel::insert_into(tenants::table)
        .values(tenant)
        .execute(conn)?;
    Ok(tenant.clone())
}
