//! The HTTP side: `/healthz` (the process is alive), `/readyz` (the database answers
//! and the schema is current), and the CalDAV/CardDAV endpoint ([`crate::dav`]).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::store::Store;

/// The HTTP router.
pub fn router(store: Store, dav: crate::dav::DavState, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(store.clone())
        .route("/metrics", get(scrape))
        .with_state((store, metrics))
        .merge(crate::dav::router(dav))
}

async fn scrape(
    State((store, metrics)): State<(Store, Arc<Metrics>)>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(&store).await,
    )
}

async fn ready(State(store): State<Store>) -> (StatusCode, &'static str) {
    if store.migrated().await {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unreachable or schema not migrated\n",
        )
    }
}
