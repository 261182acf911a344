//! `GET /openapi.json`: an OpenAPI 3 document of every route (legacy paths as served; the
//! plugin's own routes under its mount point `/plugins/phase1-staking`).

use guest_sdk::HttpRequest;
use serde_json::{json, Map, Value};

use super::envelope::{self, ApiResult};

/// Where the plugin's non-legacy routes are served.
pub const MOUNT_POINT: &str = "/plugins/phase1-staking";

fn int() -> Value {
    json!({ "type": "integer", "format": "int64" })
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn object(props: &[(&str, Value)]) -> Value {
    let properties: Map<String, Value> = props.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    json!({ "type": "object", "properties": properties, "required": required })
}

fn query(name: &str, required: bool, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": required, "description": description, "schema": string() })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

/// `{"data": <schema>}`, with pagination when `paged`.
fn envelope_schema(data: Value, paged: bool) -> Value {
    let mut props = vec![("data", data)];
    if paged {
        props.push(("pagination", schema_ref("Pagination")));
    }
    object(&props)
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": json_content(schema) })
}

fn error(description: &str) -> Value {
    ok(description, schema_ref("Error"))
}

fn get(summary: &str, params: Vec<Value>, responses: Value) -> Value {
    json!({ "get": { "summary": summary, "parameters": params, "responses": responses } })
}

fn pagination_key() -> Value {
    query("pagination_key", false, "Token of the next page (`pagination.next_key` of the previous page)")
}

fn paths() -> Value {
    let array = |item: &str| json!({ "type": "array", "items": schema_ref(item), "nullable": true });
    let state_param = json!({
        "name": "state", "in": "query", "required": false, "description": "Only delegations in this state",
        "schema": { "type": "string", "enum": ["active", "unbonding_requested", "unbonding", "unbonded", "withdrawn"] }
    });
    let mut p = Map::new();
    p.insert(
        "/healthcheck".into(),
        get("Health check", vec![], json!({ "200": ok("Server is up and running", envelope_schema(string(), false)) })),
    );
    p.insert(
        "/v1/staker/delegations".into(),
        get(
            "A staker's delegations, start height descending",
            vec![query("staker_btc_pk", true, "Staker x-only public key (64 hex)"), state_param, pagination_key()],
            json!({
                "200": ok("Delegations and the next page token", envelope_schema(array("DelegationPublic"), true)),
                "400": error("Missing or invalid parameter")
            }),
        ),
    );
    p.insert(
        "/v1/delegation".into(),
        get(
            "A delegation by staking transaction hash",
            vec![query("staking_tx_hash_hex", true, "Staking transaction hash (64 hex)")],
            json!({
                "200": ok("The delegation", envelope_schema(schema_ref("DelegationPublic"), false)),
                "400": error("Missing or invalid parameter"),
                "404": error("NOT_FOUND: staking delegation not found, please retry")
            }),
        ),
    );
    p.insert(
        "/v1/unbonding/eligibility".into(),
        get(
            "Whether a delegation can be unbonded",
            vec![query("staking_tx_hash_hex", true, "Staking transaction hash (64 hex)")],
            json!({
                "200": { "description": "Eligible (body `null`)" },
                "400": error("Missing or invalid parameter"),
                "403": error("NOT_FOUND: delegation not found; FORBIDDEN: delegation state is not active")
            }),
        ),
    );
    p.insert(
        "/v1/unbonding".into(),
        json!({ "post": {
            "summary": "Submit a pre-signed unbonding transaction (asynchronous)",
            "requestBody": { "required": true, "content": json_content(schema_ref("UnbondDelegationRequestPayload")) },
            "responses": {
                "202": { "description": "Accepted (body `null`)" },
                "400": error("Invalid request payload"),
                "403": error("NOT_FOUND, FORBIDDEN (not active, already submitted) or VALIDATION_ERROR"),
                "413": error("Body larger than 4096 bytes"),
                "500": error("Internal service error")
            }
        }}),
    );
    p.insert(
        "/v1/global-params".into(),
        get(
            "Global parameters",
            vec![],
            json!({ "200": ok("Every parameters version", envelope_schema(schema_ref("GlobalParams"), false)) }),
        ),
    );
    p.insert(
        "/v1/finality-providers".into(),
        get(
            "Finality providers by active TVL descending",
            vec![query("fp_btc_pk", false, "Only this finality provider (no pagination)"), pagination_key()],
            json!({
                "200": ok("Finality providers", envelope_schema(array("FpDetailsPublic"), true)),
                "400": error("Invalid parameter")
            }),
        ),
    );
    p.insert(
        "/v1/stats".into(),
        get(
            "Overall statistics (legacy semantics)",
            vec![],
            json!({ "200": ok("Overall statistics", envelope_schema(schema_ref("OverallStatsPublic"), false)) }),
        ),
    );
    p.insert(
        "/v1/stats/staker".into(),
        get(
            "Stakers by active TVL descending, or one staker",
            vec![query("staker_btc_pk", false, "Only this staker (no pagination)"), pagination_key()],
            json!({
                "200": ok("Staker statistics", envelope_schema(array("StakerStatsPublic"), true)),
                "400": error("Invalid parameter")
            }),
        ),
    );
    p.insert(
        "/v1/staker/delegation/check".into(),
        get(
            "Whether the staker of a P2TR or P2WPKH address has an active delegation",
            vec![
                query("address", true, "Staker address (taproot or native segwit)"),
                json!({ "name": "timeframe", "in": "query", "required": false,
                        "description": "`today`: started at or after 00:00 UTC of the newest block's day",
                        "schema": { "type": "string", "enum": ["today"] } }),
            ],
            json!({
                "200": ok("`{data, code}`", schema_ref("DelegationCheckPublicResponse")),
                "400": error("Missing or invalid parameter")
            }),
        ),
    );
    p.insert(
        "/v1/staker/pubkey-lookup".into(),
        get(
            "Staker public keys of up to 10 addresses",
            vec![json!({ "name": "address", "in": "query", "required": true, "style": "form", "explode": true,
                         "description": "Taproot or native segwit addresses (repeat the parameter, at most 10)",
                         "schema": { "type": "array", "items": string(), "maxItems": 10 } })],
            json!({
                "200": ok(
                    "Address to staker public key, known addresses only",
                    envelope_schema(json!({ "type": "object", "additionalProperties": string() }), false)
                ),
                "400": error("Missing, too many or invalid addresses")
            }),
        ),
    );
    p.insert(
        "/openapi.json".into(),
        get("This document", vec![], json!({ "200": { "description": "OpenAPI 3 document" } })),
    );
    p.insert(
        format!("{MOUNT_POINT}/metrics"),
        get(
            "The indexer's Prometheus series",
            vec![],
            json!({ "200": { "description": "Prometheus text",
                             "content": { "text/plain; version=0.0.4": { "schema": string() } } } }),
        ),
    );
    p.insert(
        format!("{MOUNT_POINT}/stats"),
        get(
            "Overall statistics, accurate semantics (expired and withdrawn stake not active)",
            vec![],
            json!({ "200": ok("Overall statistics", envelope_schema(schema_ref("AccurateStatsPublic"), false)) }),
        ),
    );
    p.insert(
        format!("{MOUNT_POINT}/unbonding-requests"),
        get(
            "Accepted unbonding requests in arrival order (what the unbonding pipeline consumes)",
            vec![
                json!({ "name": "after", "in": "query", "required": false,
                        "description": "Only requests with a larger `seq`", "schema": int() }),
                json!({ "name": "limit", "in": "query", "required": false,
                        "description": "At most this many (default 100, at most 1000)", "schema": int() }),
            ],
            json!({
                "200": ok("Requests", envelope_schema(array("UnbondingRequestRecord"), false)),
                "400": error("Invalid parameter")
            }),
        ),
    );
    Value::Object(p)
}

fn schemas() -> Value {
    let tx = object(&[
        ("tx_hex", string()),
        ("output_index", int()),
        ("start_timestamp", json!({ "type": "string", "format": "date-time" })),
        ("start_height", int()),
        ("timelock", int()),
    ]);
    let mut delegation = object(&[
        ("staking_tx_hash_hex", string()),
        ("staker_pk_hex", string()),
        ("finality_provider_pk_hex", string()),
        (
            "state",
            json!({ "type": "string", "enum": ["active", "unbonding_requested", "unbonding", "unbonded", "withdrawn"] }),
        ),
        ("staking_value", int()),
        ("staking_tx", schema_ref("TransactionPublic")),
        ("unbonding_tx", schema_ref("TransactionPublic")),
        ("is_overflow", json!({ "type": "boolean" })),
    ]);
    delegation["required"] = json!([
        "staking_tx_hash_hex",
        "staker_pk_hex",
        "finality_provider_pk_hex",
        "state",
        "staking_value",
        "staking_tx",
        "is_overflow"
    ]);
    let stats_fields = [
        ("active_tvl", int()),
        ("total_tvl", int()),
        ("active_delegations", int()),
        ("total_delegations", int()),
        ("total_stakers", int()),
        ("unconfirmed_tvl", int()),
        ("pending_tvl", int()),
    ];
    let mut accurate = stats_fields.to_vec();
    accurate.push(("semantics", string()));
    let version = object(&[
        ("version", int()),
        ("activation_height", int()),
        ("staking_cap", int()),
        ("cap_height", int()),
        ("tag", string()),
        ("covenant_pks", json!({ "type": "array", "items": string() })),
        ("covenant_quorum", int()),
        ("unbonding_time", int()),
        ("unbonding_fee", int()),
        ("max_staking_amount", int()),
        ("min_staking_amount", int()),
        ("max_staking_time", int()),
        ("min_staking_time", int()),
        ("confirmation_depth", int()),
    ]);
    json!({
        "Error": object(&[
            ("errorCode", json!({ "type": "string", "enum": [
                "INTERNAL_SERVICE_ERROR", "VALIDATION_ERROR", "NOT_FOUND", "BAD_REQUEST", "FORBIDDEN",
                "UNPROCESSABLE_ENTITY", "REQUEST_TIMEOUT"] })),
            ("message", string()),
        ]),
        "Pagination": object(&[("next_key", string())]),
        "TransactionPublic": tx,
        "DelegationPublic": delegation,
        "FpDescriptionPublic": object(&[
            ("moniker", string()), ("identity", string()), ("website", string()),
            ("security_contact", string()), ("details", string()),
        ]),
        "FpDetailsPublic": object(&[
            ("description", schema_ref("FpDescriptionPublic")),
            ("commission", string()),
            ("btc_pk", string()),
            ("active_tvl", int()),
            ("total_tvl", int()),
            ("active_delegations", int()),
            ("total_delegations", int()),
        ]),
        "StakerStatsPublic": object(&[
            ("staker_pk_hex", string()),
            ("active_tvl", int()),
            ("total_tvl", int()),
            ("active_delegations", int()),
            ("total_delegations", int()),
        ]),
        "OverallStatsPublic": object(&stats_fields),
        "AccurateStatsPublic": object(&accurate),
        "VersionedGlobalParamsPublic": version,
        "GlobalParams": object(&[("versions", json!({ "type": "array", "items": schema_ref("VersionedGlobalParamsPublic") }))]),
        "UnbondDelegationRequestPayload": object(&[
            ("staking_tx_hash_hex", string()),
            ("unbonding_tx_hash_hex", string()),
            ("unbonding_tx_hex", string()),
            ("staker_signed_signature_hex", string()),
        ]),
        "DelegationCheckPublicResponse": object(&[("data", json!({ "type": "boolean" })), ("code", int())]),
        "UnbondingRequestRecord": object(&[
            ("seq", int()),
            ("staking_tx_hash_hex", string()),
            ("staker_pk_hex", string()),
            ("finality_pk_hex", string()),
            ("unbonding_tx_sig_hex", string()),
            ("state", string()),
            ("unbonding_tx_hash_hex", string()),
            ("unbonding_tx_hex", string()),
            ("staking_tx_hex", string()),
            ("staking_output_index", int()),
            ("staking_timelock", int()),
            ("staking_amount", int()),
        ]),
    })
}

/// The whole document.
pub fn spec() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Babylon Phase-1 staking API (phase1-staking plugin)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The legacy staking-api-service /v1 routes (v0.3.8 superset, Phase-1 fields only)."
        },
        "paths": paths(),
        "components": { "schemas": schemas() }
    })
}

/// `GET /openapi.json` (the document itself, not wrapped in the envelope).
pub fn document(_req: &HttpRequest) -> ApiResult {
    Ok(envelope::json_response(200, &spec()))
}
