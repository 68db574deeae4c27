//! The admin listener (loopback by default): `GET /metrics`, `GET /healthz`, `GET /readyz` and
//! `POST /reload`.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use super::live::Live;
use super::metrics::Metrics;

/// The admin endpoints.
pub struct Admin {
    pub live: Arc<Live>,
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        match (method, path.as_str()) {
            (Method::GET, "/metrics") => reply(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics.render(),
            ),
            (Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
            (Method::GET, "/readyz") => {
                // The proxy listens only after the first ruleset compiled, so a snapshot is
                // always there; say which one.
                let generation = self.live.load().generation;
                json(
                    StatusCode::OK,
                    &serde_json::json!({ "ready": true, "generation": generation }),
                )
            }
            (Method::POST, "/reload") => {
                let live = self.live.clone();
                // Compiling takes milliseconds to a second: off the async workers.
                let outcome = tokio::task::spawn_blocking(move || live.reload("admin")).await;
                match outcome {
                    Ok(Ok(report)) => json(StatusCode::OK, &report),
                    Ok(Err(e)) => json(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &serde_json::json!({
                            "status": "failed",
                            "error": format!("{e:#}"),
                            "running_generation": self.live.load().generation,
                        }),
                    ),
                    Err(e) => json(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &serde_json::json!({ "status": "failed", "error": e.to_string() }),
                    ),
                }
            }
            (_, "/metrics" | "/healthz" | "/readyz" | "/reload") => {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /metrics, /healthz, /readyz or POST /reload\n",
            ),
        }
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = resp.body().len();
    resp.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    resp
}

fn text(status: StatusCode, body: &str) -> Response<Vec<u8>> {
    reply(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response<Vec<u8>> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    reply(status, "application/json", body)
}
