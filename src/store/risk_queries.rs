//! Recomputing every customer's risk score from their counters (SPEC §4: "recomputed
//! after every status change, nightly, and on command"). A status change recomputes its
//! customer inside the engine's commit; this pass is the nightly one, and repairs any
//! score that drifted from its counters (a restore from an older backup, a manual edit,
//! a change of the formula between versions).

use actors::ports::store::CustomerHistory;
use diesel::prelude::*;

use super::connection::DbConnection;
use super::schema::customers;

/// Customers read per page.
const PAGE: i64 = 500;

/// Sets `risk_score` from the counters for every customer of `tenant_id` whose score
/// differs; answers how many changed. Pages by id, so it holds no long transaction.
pub fn recompute_all(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<usize> {
    let mut after = String::new();
    let mut changed = 0;
    loop {
        type Row = (String, i32, i32, i32, i32, bool, i32);
        let page: Vec<Row> = customers::table
            .filter(customers::tenant_id.eq(tenant_id))
            .filter(customers::id.gt(&after))
            .filter(customers::erased_at.is_null())
            .order(customers::id.asc())
            .limit(PAGE)
            .select((
                customers::id,
                customers::appointment_count,
                customers::confirmed_count,
                customers::no_show_count,
                customers::reschedule_count,
                customers::payment_past_due,
                customers::risk_score,
            ))
            .load(conn)?;
        let Some(last) = page.last() else {
            return Ok(changed);
        };
        after = last.0.clone();
        for (id, appointments, confirmed, no_shows, reschedules, past_due, stored) in page {
            let history = CustomerHistory {
                appointments,
                confirmed,
                no_shows,
                reschedules,
                payment_past_due: past_due,
                ..CustomerHistory::default()
            };
            let score = i32::from(history.risk());
            if score != stored {
                diesel::update(customers::table.find(&id))
                    .set(customers::risk_score.eq(score))
                    .execute(conn)?;
                changed += 1;
            }
        }
    }
}
