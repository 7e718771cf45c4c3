//! The request series: every answer observed once, by method, route template and status.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error};

use crate::metrics::{Metrics, UNKNOWN_ROUTE, UNMATCHED};

/// The `method` label: the methods HTTP defines, and one value for any other a client makes
/// up, so invented methods add no series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The outermost middleware: its latency is the whole request's, and its status the one the
/// client got. The route is read after routing (`match_pattern`: the matched resource's own
/// template, found by its index, not by matching the path again).
pub async fn observe_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = method_label(req.method());
    let outcome = next.call(req).await;
    if let Some(metrics) = metrics {
        match &outcome {
            Ok(res) => {
                let route = res.request().match_pattern();
                metrics.observe_request(
                    method,
                    route.as_deref().unwrap_or(UNMATCHED),
                    res.status().as_str(),
                    started.elapsed(),
                );
            }
            Err(err) => metrics.observe_request(
                method,
                UNKNOWN_ROUTE,
                err.as_response_error().status_code().as_str(),
                started.elapsed(),
            ),
        }
    }
    outcome.map(ServiceResponse::map_into_boxed_body)
}
