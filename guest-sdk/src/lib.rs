//! The plugin side of the engine's host/plugin contract. Skeleton from issue 2: the versioned
//! WIT package and its bindings (block delivery, undo, storage, queue, RPC host functions)
//! arrive with issue 3.

/// Version of the host/plugin contract this SDK targets.
pub const CONTRACT_VERSION: &str = "0.1.0";
