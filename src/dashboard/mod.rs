//! The supervisor dashboard (SPEC §1, §6, §7): server-rendered HTML for the business
//! owner, the office manager and the person on call, usable on a phone, with live
//! updates. Everything is behind the admin sign-in (`auth`): a viewer sees, staff and
//! owners act. Pages call the same domain and query functions as the Admin API — a
//! resolve, an override or a replay here is exactly the Admin API's — and views of one
//! customer's data are audited the same way.
//!
//! | route | page | who |
//! | --- | --- | --- |
//! | `GET /` | → `/dashboard/today` | — |
//! | `GET, POST /dashboard/login`, `POST /dashboard/logout` | sign in and out ([`login`]) | anyone / session |
//! | `GET /dashboard/today` (+ `/list`) | the business day's appointments ([`today`]) | viewer |
//! | `GET /dashboard/escalations` (+ `/list`), `POST …/{id}/resolve` | the inbox ([`escalations`]) | viewer / staff |
//! | `GET /dashboard/appointments/{id}`, `POST …/override` | one appointment ([`appointment`]) | viewer (audited) / staff |
//! | `GET /dashboard/customers`, `GET /dashboard/customers/{id}` | customers and risk ([`customers`]) | viewer (detail audited) |
//! | `GET /dashboard/messages`, `POST /dashboard/messages/reply` | the message log, the sandbox outbox, a simulated reply ([`messages`]) | viewer / staff |
//! | `GET /dashboard/dead-letters`, `POST …/{id}/replay`, `POST …/{id}/archive` | dead letters ([`dead_letters`]) | viewer / staff |
//! | `GET /dashboard/supervisors` | breakers, rate limits, queues, live actors ([`supervisors`]) | viewer |
//! | `GET /dashboard/metrics` | rates per day, week or month, as charts ([`metrics`]) | viewer |
//! | `GET /dashboard/settings` | integrations, profile pack, configuration with secrets masked ([`settings`]) | viewer |
//! | `GET /dashboard/live` | server-sent events for the live lists ([`live`]) | viewer |
//! | `GET /dashboard/assets/…` | the stylesheet and script ([`assets`]) | anyone |
//!
//! Every state-changing form carries the session's CSRF token in a hidden `csrf_token`
//! field (read by `http::security`, checked by the `Principal` extractor). maud escapes
//! everything a page shows. Lists show phone numbers masked; only detail pages show
//! them in full, and only to staff. See `docs/dashboard.md`.

pub mod appointment;
pub mod assets;
pub mod chart;
pub mod customers;
pub mod dead_letters;
pub mod error;
pub mod escalations;
pub mod format;
pub mod layout;
pub mod live;
pub mod login;
pub mod messages;
pub mod metrics;
pub mod queries;
pub mod session;
pub mod settings;
pub mod supervisors;
pub mod today;

use actix_web::web;

/// Where a signed-in person lands.
pub const HOME: &str = "/dashboard/today";

/// Registers the dashboard's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let query = crate::api::admin::support::query_config;
    cfg.service(web::resource("/").route(web::get().to(home)))
        .service(web::resource("/dashboard").route(web::get().to(home)))
        .service(
            web::resource("/dashboard/login")
                .app_data(query())
                .route(web::get().to(login::page))
                .route(web::post().to(login::submit)),
        )
        .service(web::resource("/dashboard/logout").route(web::post().to(login::logout)))
        .service(web::resource(assets::CSS_PATH).route(web::get().to(assets::css)))
        .service(web::resource(assets::JS_PATH).route(web::get().to(assets::js)))
        .service(
            web::resource("/dashboard/live")
                .app_data(query())
                .route(web::get().to(live::stream)),
        )
        .service(
            web::resource("/dashboard/today")
                .app_data(query())
                .route(web::get().to(today::page_view)),
        )
        .service(
            web::resource("/dashboard/today/list")
                .app_data(query())
                .route(web::get().to(today::fragment)),
        )
        .service(
            web::resource("/dashboard/escalations")
                .app_data(query())
                .route(web::get().to(escalations::page_view)),
        )
        .service(
            web::resource("/dashboard/escalations/list")
                .app_data(query())
                .route(web::get().to(escalations::fragment)),
        )
        .service(
            web::resource("/dashboard/escalations/{id}/resolve")
                .route(web::post().to(escalations::resolve)),
        )
        .service(
            web::resource("/dashboard/appointments/{id}")
                .route(web::get().to(appointment::page_view)),
        )
        .service(
            web::resource("/dashboard/appointments/{id}/override")
                .route(web::post().to(appointment::override_status)),
        )
        .service(
            web::resource("/dashboard/messages")
                .app_data(query())
                .route(web::get().to(messages::page_view)),
        )
        .service(web::resource("/dashboard/messages/reply").route(web::post().to(messages::reply)))
        .service(
            web::resource("/dashboard/dead-letters")
                .app_data(query())
                .route(web::get().to(dead_letters::page_view)),
        )
        .service(
            web::resource("/dashboard/dead-letters/{id}/replay")
                .route(web::post().to(dead_letters::replay)),
        )
        .service(
            web::resource("/dashboard/dead-letters/{id}/archive")
                .route(web::post().to(dead_letters::archive)),
        )
        .service(
            web::resource("/dashboard/customers")
                .app_data(query())
                .route(web::get().to(customers::list)),
        )
        .service(web::resource("/dashboard/customers/{id}").route(web::get().to(customers::detail)))
        .service(
            web::resource("/dashboard/supervisors").route(web::get().to(supervisors::page_view)),
        )
        .service(
            web::resource("/dashboard/metrics")
                .app_data(query())
                .route(web::get().to(metrics::page_view)),
        )
        .service(web::resource("/dashboard/settings").route(web::get().to(settings::page_view)));
}

/// `GET /` and `GET /dashboard`.
async fn home() -> actix_web::HttpResponse {
    layout::see_other(HOME)
}
