//! JSON-RPC errors with Bitcoin Core's codes (src/rpc/protocol.h).

use serde_json::{json, Value};

pub const RPC_INVALID_REQUEST: i32 = -32600;
pub const RPC_METHOD_NOT_FOUND: i32 = -32601;
pub const RPC_INVALID_PARAMS: i32 = -32602;
pub const RPC_INTERNAL_ERROR: i32 = -32603;
pub const RPC_PARSE_ERROR: i32 = -32700;

pub const RPC_MISC_ERROR: i32 = -1;
pub const RPC_TYPE_ERROR: i32 = -3;
pub const RPC_INVALID_ADDRESS_OR_KEY: i32 = -5;
pub const RPC_OUT_OF_MEMORY: i32 = -7;
pub const RPC_INVALID_PARAMETER: i32 = -8;
pub const RPC_DATABASE_ERROR: i32 = -20;
pub const RPC_DESERIALIZATION_ERROR: i32 = -22;
pub const RPC_VERIFY_ERROR: i32 = -25;
pub const RPC_VERIFY_REJECTED: i32 = -26;
pub const RPC_VERIFY_ALREADY_IN_CHAIN: i32 = -27;
pub const RPC_IN_WARMUP: i32 = -28;

pub const RPC_WALLET_ERROR: i32 = -4;
pub const RPC_WALLET_INSUFFICIENT_FUNDS: i32 = -6;
pub const RPC_WALLET_INVALID_LABEL_NAME: i32 = -11;
pub const RPC_WALLET_KEYPOOL_RAN_OUT: i32 = -12;
pub const RPC_WALLET_UNLOCK_NEEDED: i32 = -13;
pub const RPC_WALLET_PASSPHRASE_INCORRECT: i32 = -14;
pub const RPC_WALLET_WRONG_ENC_STATE: i32 = -15;
pub const RPC_WALLET_ENCRYPTION_FAILED: i32 = -16;
pub const RPC_WALLET_ALREADY_UNLOCKED: i32 = -17;
pub const RPC_WALLET_NOT_FOUND: i32 = -18;
pub const RPC_WALLET_NOT_SPECIFIED: i32 = -19;
pub const RPC_WALLET_ALREADY_LOADED: i32 = -35;
pub const RPC_WALLET_ALREADY_EXISTS: i32 = -36;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: i32,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into() }
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(RPC_INVALID_PARAMETER, message)
    }
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::new(RPC_TYPE_ERROR, message)
    }
    pub fn misc(message: impl Into<String>) -> Self {
        Self::new(RPC_MISC_ERROR, message)
    }
    pub fn wallet(message: impl Into<String>) -> Self {
        Self::new(RPC_WALLET_ERROR, message)
    }
    pub fn to_json(&self) -> Value {
        json!({ "code": self.code, "message": self.message })
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

pub type RpcResult = Result<Value, RpcError>;
