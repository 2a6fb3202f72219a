//! The nightly risk pass (SPEC §4) on both backends: every customer whose stored score
//! disagrees with their counters is corrected, the others are left alone.

mod common;

use actors::ports::store::CustomerRecord;
use aro::store::models::NewCustomerRow;
use aro::store::risk_queries::recompute_all;
use aro::store::schema::customers;
use common::{spawn_app_with, Kind, TestDb};
use diesel::prelude::*;

async fn scores_follow_the_counters(kind: Kind) {
    let app = spawn_app_with(TestDb::new(kind), &[]).await;
    let db = aro::store::Database::open(&app.db.config(&[]).database).expect("open");
    // (id, appointments, confirmed, no-shows, stored score) → expected score.
    let cases = [
        ("c-new", 0, 0, 0, 0, 0),
        ("c-two-no-shows", 2, 0, 2, 0, 70),
        ("c-reliable", 4, 4, 0, 55, 0),
        ("c-one-of-two", 2, 1, 1, 35, 35),
    ];
    let rows = cases.to_vec();
    let changed = db
        .run(move |conn| {
            let now = chrono::Utc::now().naive_utc();
            for (id, appointments, confirmed, no_shows, stored, _) in &rows {
                let record = CustomerRecord {
                    id: id.to_string(),
                    tenant_id: "default".into(),
                    phone_e164: None,
                    name: None,
                    email: None,
                    timezone: None,
                    opted_out: false,
                    history: Default::default(),
                };
                diesel::insert_into(customers::table)
                    .values(NewCustomerRow::new(&record, now))
                    .execute(conn)?;
                diesel::update(customers::table.find(id))
                    .set((
                        customers::appointment_count.eq(appointments),
                        customers::confirmed_count.eq(confirmed),
                        customers::no_show_count.eq(no_shows),
                        customers::risk_score.eq(stored),
                    ))
                    .execute(conn)?;
            }
            Ok(recompute_all(conn, "default")?)
        })
        .await
        .expect("recompute");
    assert_eq!(changed, 2, "only the two drifted scores change");
    for (id, .., expected) in cases {
        let score: i32 = db
            .run(move |conn| {
                Ok(customers::table
                    .find(id)
                    .select(customers::risk_score)
                    .first(conn)?)
            })
            .await
            .expect("read");
        assert_eq!(score, expected, "{id}");
    }
    app.handle.stop(true).await;
}

on_both_backends!(scores_follow_the_counters);
