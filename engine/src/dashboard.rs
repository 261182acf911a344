//! The staking dashboard (`dashboard/` at the repository root): a static page embedded in the
//! binary, served at `/` with its modules and style under `/dashboard/`. It reads only the
//! plugins' public routes (`/v1`, `/status`), so it works with whatever the runtime file runs.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// `(file, content type, bytes)` of every asset.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("style.css", "text/css; charset=utf-8", include_bytes!("../../dashboard/style.css")),
    ("app.js", JS, include_bytes!("../../dashboard/app.js")),
    ("api.js", JS, include_bytes!("../../dashboard/api.js")),
    ("chart.js", JS, include_bytes!("../../dashboard/chart.js")),
    ("format.js", JS, include_bytes!("../../dashboard/format.js")),
    ("params.js", JS, include_bytes!("../../dashboard/params.js")),
    ("signer.js", JS, include_bytes!("../../dashboard/signer.js")),
];
const JS: &str = "text/javascript; charset=utf-8";
const INDEX: &[u8] = include_bytes!("../../dashboard/index.html");

/// `GET /` and `GET /dashboard/{file}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(index)).route("/dashboard/{file}", get(asset))
}

async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], INDEX).into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, ..)| *name == file) {
        Some((_, content_type, bytes)) => {
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no dashboard file {file:?}")).into_response(),
    }
}
