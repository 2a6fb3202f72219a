//! Body errors get the standard envelope: malformed JSON, the wrong content type, a
//! body over the limit — through the same extractor configuration and middleware the
//! daemon uses, in front of a JSON route.

use actix_web::middleware::from_fn;
use actix_web::{test, web, App, HttpResponse};
use aro::http::request_context::request_context;
use serde_json::Value;

const LIMIT: usize = 1024;

async fn echo(body: web::Json<Value>) -> HttpResponse {
    HttpResponse::Ok().json(body.into_inner())
}

async fn raw(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().body(body)
}

macro_rules! service {
    () => {
        test::init_service(
            App::new()
                .wrap(from_fn(request_context))
                .configure(|cfg| aro::http::configure_extractors(cfg, LIMIT))
                .route("/echo", web::post().to(echo))
                .route("/raw", web::post().to(raw)),
        )
        .await
    };
}

#[actix_rt::test]
async fn well_formed_json_passes() {
    let app = service!();
    let req = test::TestRequest::post()
        .uri("/echo")
        .insert_header(("content-type", "application/json"))
        .set_payload(r#"{"a":1}"#)
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
}

#[actix_rt::test]
async fn malformed_json_is_a_validation_error_with_position() {
    let app = service!();
    let req = test::TestRequest::post()
        .uri("/echo")
        .insert_header(("content-type", "application/json"))
        .set_payload("{\"a\": 1,,}")
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 400);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(body["error"]["details"]["reason"], "malformed_json");
    assert_eq!(body["error"]["details"]["line"], 1);
    assert_eq!(body["error"]["retryable"], false);
}

#[actix_rt::test]
async fn wrong_content_type_is_415() {
    let app = service!();
    let req = test::TestRequest::post()
        .uri("/echo")
        .insert_header(("content-type", "text/plain"))
        .set_payload(r#"{"a":1}"#)
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 415);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(body["error"]["details"]["expected"], "application/json");
}

#[actix_rt::test]
async fn oversized_json_is_413() {
    let app = service!();
    let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(LIMIT * 2));
    let req = test::TestRequest::post()
        .uri("/echo")
        .insert_header(("content-type", "application/json"))
        .set_payload(big)
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 413);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(body["error"]["details"]["reason"], "payload_too_large");
}

#[actix_rt::test]
async fn oversized_raw_body_is_413_in_the_envelope() {
    let app = service!();
    let req = test::TestRequest::post()
        .uri("/raw")
        .set_payload(vec![b'x'; LIMIT * 2])
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 413);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(body["error"]["details"]["reason"], "payload_too_large");
}
