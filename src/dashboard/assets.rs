//! The dashboard's stylesheet and script, compiled into the binary and served from the
//! app itself (the CSP is `default-src 'self'`: nothing inline, nothing from elsewhere).

use actix_web::http::header;
use actix_web::HttpResponse;

pub const CSS_PATH: &str = "/dashboard/assets/dashboard.css";
pub const JS_PATH: &str = "/dashboard/assets/dashboard.js";

const CSS: &str = include_str!("assets/dashboard.css");
const JS: &str = include_str!("assets/dashboard.js");

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // Short: a new binary's assets are picked up within minutes.
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body)
}

pub async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

pub async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}
