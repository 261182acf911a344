//! Route declarations and request/response helpers for `handle-request`.

use crate::{HttpRequest, HttpResponse, Route};

/// A route under the plugin's mount point (`/plugins/<name><path>`). `write`: see [`Route`].
pub fn route(method: &str, path: &str, write: bool) -> Route {
    Route { method: method.into(), path: path.into(), legacy: false, write }
}

/// A read route `GET path` under the plugin's mount point.
pub fn route_get(path: &str) -> Route {
    route("GET", path, false)
}

/// `POST path` under the plugin's mount point; `write` makes it a write route.
pub fn route_post(path: &str, write: bool) -> Route {
    route("POST", path, write)
}

/// A read route `GET path` served at `path` itself (e.g. Phase-1's `/v1/...`).
pub fn legacy_get(path: &str) -> Route {
    Route { legacy: true, ..route_get(path) }
}

/// `POST path` served at `path` itself; `write` makes it a write route.
pub fn legacy_post(path: &str, write: bool) -> Route {
    Route { legacy: true, ..route_post(path, write) }
}

impl HttpRequest {
    /// The value of the route's `{name}` segment.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// The body as UTF-8.
    pub fn body_str(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.body).map_err(|e| format!("request body is not UTF-8: {e}"))
    }
    /// The body decoded as JSON.
    pub fn body_json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("request body is not the expected JSON: {e}"))
    }
}

impl HttpResponse {
    /// `value` as an `application/json` body.
    pub fn json<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> HttpResponse {
        match serde_json::to_vec(value) {
            Ok(body) => HttpResponse { status, content_type: "application/json".into(), body },
            Err(e) => HttpResponse::error(500, &format!("response does not serialize: {e}")),
        }
    }
    /// A `text/plain; charset=utf-8` body.
    pub fn text(status: u16, body: impl Into<String>) -> HttpResponse {
        HttpResponse { status, content_type: "text/plain; charset=utf-8".into(), body: body.into().into_bytes() }
    }
    /// `{"error": message}` with `status`.
    pub fn error(status: u16, message: &str) -> HttpResponse {
        let body = serde_json::json!({ "error": message }).to_string().into_bytes();
        HttpResponse { status, content_type: "application/json".into(), body }
    }
    /// 404 `{"error":"no such route"}` (the default `handle_request`).
    pub fn not_found() -> HttpResponse {
        HttpResponse::error(404, "no such route")
    }
    /// The body as UTF-8 (lossy), e.g. for assertions.
    pub fn text_body(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body decoded as JSON, e.g. for assertions.
    pub fn json_body<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("response body is not the expected JSON: {e}"))
    }
}
