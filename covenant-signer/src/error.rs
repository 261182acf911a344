//! The legacy error body and status codes.
//!
//! Every error answer is `{"errorCode": "...", "message": "..."}` with the legacy codes
//! (`BAD_REQUEST`, `INTERNAL_SERVICE_ERROR`, ...). As in covenant-signer v0.2.8+, a request that
//! fails a check is a 400 `BAD_REQUEST`, and only problems on this side (full node or wallet
//! unreachable, wallet locked or missing a key it was configured to serve) are a 500
//! `INTERNAL_SERVICE_ERROR`. Unlike the legacy service, 500 answers keep their message: an
//! operator needs to read "the wallet is locked".

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The legacy error codes used by this service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// A malformed or invalid signing request (HTTP 400, also 413 for an oversized body).
    BadRequest,
    /// A problem on the signer's side (HTTP 500).
    InternalServiceError,
    /// No such route (HTTP 404).
    NotFound,
}

impl ErrorCode {
    /// The wire spelling (`BAD_REQUEST`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::InternalServiceError => "INTERNAL_SERVICE_ERROR",
            ErrorCode::NotFound => "NOT_FOUND",
        }
    }
}

/// An HTTP error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Legacy error code.
    pub code: ErrorCode,
    /// Human-readable message: what failed and how to fix it.
    pub message: String,
}

impl ApiError {
    /// 400 `BAD_REQUEST`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code: ErrorCode::BadRequest, message: message.into() }
    }

    /// 500 `INTERNAL_SERVICE_ERROR`.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: ErrorCode::InternalServiceError,
            message: message.into(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "errorCode": self.code.as_str(), "message": self.message })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code.as_str(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}
