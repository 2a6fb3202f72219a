//! The Admin API under `/v1/admin` (SPEC §7): JSON, errors in the standard envelope,
//! viewer or above for reads, staff or above for changes (cookie sessions also need
//! their CSRF token, checked by the `Principal` extractor). Every change, and every
//! view of one customer's data, is written to the audit log with pseudonymous ids only.
//!
//! | route | who | audited as |
//! | --- | --- | --- |
//! | `GET /v1/admin/appointments?status=&from=&to=&customerId=&limit=&cursor=` | viewer | — |
//! | `GET /v1/admin/appointments/{id}` (timeline) | viewer | `appointment.viewed` |
//! | `POST /v1/admin/appointments/{id}/override` | staff | `appointment.override` |
//! | `GET /v1/admin/customers?risk=&q=&limit=&cursor=` | viewer | — |
//! | `GET /v1/admin/customers/{id}` | viewer | `customer.viewed` |
//! | `GET /v1/admin/customers/{id}/export` (GDPR: everything held, one JSON) | staff | `customer.exported` |
//! | `POST /v1/admin/customers/{id}/erase` (GDPR: personal data erased everywhere) | owner | `customer.erased` |
//! | `POST /v1/admin/customers/{id}/rectify` (GDPR: name, phone, email, language) | staff | `customer.rectified` |
//! | `GET /v1/admin/escalations?status=&priority=&limit=&cursor=` | viewer | — |
//! | `POST /v1/admin/escalations/{id}/resolve` | staff | `escalation.resolved` |
//! | `GET /v1/admin/dead-letters?status=&domain=&limit=&cursor=` | viewer | — |
//! | `POST /v1/admin/dead-letters/{id}/replay` | staff | `dead_letter.replayed` |
//! | `POST /v1/admin/dead-letters/{id}/archive` | staff | `dead_letter.archived` |
//! | `GET /v1/admin/supervisors` | viewer | — |
//! | `GET /v1/admin/actors`, `GET /v1/admin/actors/{appointmentId}` | viewer | — |
//! | `POST /v1/admin/classify` | staff | — (nothing changes) |
//! | `GET /v1/admin/metrics?period=&from=&to=` | viewer | — |
//!
//! Handlers are thin: parse and check, run a query from [`queries`] (or ask the
//! engine), answer. Lists are keyset-paginated: `limit` (1–200, default 50) and the
//! opaque `cursor` from the previous page's `nextCursor`.

pub(crate) mod appointments;
pub(crate) mod classify;
pub(crate) mod customers;
pub(crate) mod dead_letters;
pub(crate) mod engine;
pub mod error;
pub(crate) mod escalations;
pub(crate) mod gdpr;
pub(crate) mod metrics;
pub mod queries;
pub mod support;

use actix_web::web;

pub use error::AdminError;

/// Registers the Admin API routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let query = support::query_config;
    cfg.service(
        web::resource("/v1/admin/appointments")
            .app_data(query())
            .route(web::get().to(appointments::list)),
    )
    .service(
        web::resource("/v1/admin/appointments/{id}").route(web::get().to(appointments::detail)),
    )
    .service(
        web::resource("/v1/admin/appointments/{id}/override")
            .route(web::post().to(appointments::override_status)),
    )
    .service(
        web::resource("/v1/admin/customers")
            .app_data(query())
            .route(web::get().to(customers::list)),
    )
    .service(web::resource("/v1/admin/customers/{id}").route(web::get().to(customers::detail)))
    .service(web::resource("/v1/admin/customers/{id}/export").route(web::get().to(gdpr::export)))
    .service(web::resource("/v1/admin/customers/{id}/erase").route(web::post().to(gdpr::erase)))
    .service(web::resource("/v1/admin/customers/{id}/rectify").route(web::post().to(gdpr::rectify)))
    .service(
        web::resource("/v1/admin/escalations")
            .app_data(query())
            .route(web::get().to(escalations::list)),
    )
    .service(
        web::resource("/v1/admin/escalations/{id}/resolve")
            .route(web::post().to(escalations::resolve)),
    )
    .service(
        web::resource("/v1/admin/dead-letters")
            .app_data(query())
            .route(web::get().to(dead_letters::list)),
    )
    .service(
        web::resource("/v1/admin/dead-letters/{id}/replay")
            .route(web::post().to(dead_letters::replay)),
    )
    .service(
        web::resource("/v1/admin/dead-letters/{id}/archive")
            .route(web::post().to(dead_letters::archive)),
    )
    .service(web::resource("/v1/admin/supervisors").route(web::get().to(engine::supervisors)))
    .service(web::resource("/v1/admin/actors").route(web::get().to(engine::actors)))
    .service(web::resource("/v1/admin/actors/{id}").route(web::get().to(engine::inspect)))
    .service(web::resource("/v1/admin/classify").route(web::post().to(classify::classify)))
    .service(
        web::resource("/v1/admin/metrics")
            .app_data(query())
            .route(web::get().to(metrics::metrics)),
    );
}
