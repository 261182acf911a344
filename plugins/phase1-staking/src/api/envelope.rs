//! The legacy response shapes (spec §6.5): successes as `{"data": ..., "pagination":
//! {"next_key": ...}}` (pagination only on paginated endpoints), errors as `{"errorCode": ...,
//! "message": ...}` with the message of a 5xx replaced by "Internal service error" (the legacy
//! `registerHandler`). Bodies are compact JSON with fields in the Go structs' order.

use guest_sdk::HttpResponse;
use serde::Serialize;

/// The legacy `types.ErrorCode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InternalServiceError,
    ValidationError,
    NotFound,
    BadRequest,
    Forbidden,
}

impl ErrorCode {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InternalServiceError => "INTERNAL_SERVICE_ERROR",
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::Forbidden => "FORBIDDEN",
        }
    }
}

/// An error answer: HTTP status, legacy code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }
    /// 400 BAD_REQUEST.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, ErrorCode::BadRequest, message)
    }
    /// 403 with `code` (the legacy unbonding answers use 403 with NOT_FOUND, FORBIDDEN and
    /// VALIDATION_ERROR).
    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::new(403, code, message)
    }
    /// 500 INTERNAL_SERVICE_ERROR; the message is logged by nobody and never shown (5xx rule),
    /// but kept for tests and debugging.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, ErrorCode::InternalServiceError, message)
    }

    /// The HTTP response: `{"errorCode", "message"}`, 5xx messages hidden.
    pub fn into_response(self) -> HttpResponse {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "errorCode")]
            error_code: &'a str,
            message: &'a str,
        }
        let message = if self.status >= 500 { "Internal service error" } else { self.message.as_str() };
        json_response(self.status, &Body { error_code: self.code.as_str(), message })
    }
}

/// Store and config errors (strings) are internal errors.
impl From<String> for ApiError {
    fn from(message: String) -> ApiError {
        ApiError::internal(message)
    }
}

/// What a route handler returns.
pub type ApiResult = Result<HttpResponse, ApiError>;

/// `{"pagination": {"next_key": ...}}`'s inner object.
#[derive(Serialize)]
struct Pagination<'a> {
    next_key: &'a str,
}

/// `value` as compact JSON with `status` and `application/json`.
pub fn json_response<T: Serialize + ?Sized>(status: u16, value: &T) -> HttpResponse {
    match serde_json::to_vec(value) {
        Ok(body) => HttpResponse { status, content_type: "application/json".into(), body },
        Err(e) => ApiError::internal(format!("response does not serialize: {e}")).into_response(),
    }
}

/// 200 `{"data": data}`.
pub fn ok<T: Serialize + ?Sized>(data: &T) -> HttpResponse {
    #[derive(Serialize)]
    struct Body<'a, T: ?Sized> {
        data: &'a T,
    }
    json_response(200, &Body { data })
}

/// 200 `{"data": data, "pagination": {"next_key": next_key}}` (`""` on the last page).
pub fn ok_page<T: Serialize + ?Sized>(data: &T, next_key: &str) -> HttpResponse {
    #[derive(Serialize)]
    struct Body<'a, T: ?Sized> {
        data: &'a T,
        pagination: Pagination<'a>,
    }
    json_response(200, &Body { data, pagination: Pagination { next_key } })
}

/// `status` with the body `null` (the legacy answers without data: eligibility 200, unbonding
/// 202).
pub fn null(status: u16) -> HttpResponse {
    HttpResponse { status, content_type: "application/json".into(), body: b"null".to_vec() }
}
