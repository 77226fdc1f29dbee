//! The bench suite: the project's workloads (embedded) or another file in the same format.

use nnpool::{Padding, PoolDesc};
use serde_json::Value;

/// The default suite, a copy of the project's `bench-suite.json`.
pub const DEFAULT_SUITE: &str = include_str!("../../benches/bench-suite.json");

/// One workload: a name, a descriptor and an input shape `[N, C, H, W]`.
pub struct Case {
    pub name: String,
    pub desc: PoolDesc,
    pub shape: Vec<usize>,
}

/// Parses a suite in the `bench-suite.json` format, with errors that name the case and field.
pub fn parse(text: &str) -> Result<Vec<Case>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("suite is not JSON: {e}"))?;
    let cases = doc["cases"]
        .as_array()
        .ok_or("suite has no \"cases\" array")?;
    cases
        .iter()
        .enumerate()
        .map(|(i, case)| parse_case(i, case))
        .collect()
}

fn parse_case(index: usize, case: &Value) -> Result<Case, String> {
    let name = case["name"]
        .as_str()
        .ok_or(format!("case {index} has no \"name\""))?
        .to_string();
    let field = |key: &str| -> Result<usize, String> {
        case[key].as_u64().map(|v| v as usize).ok_or(format!(
            "case {name}: \"{key}\" must be a non-negative integer"
        ))
    };
    let list = |key: &str| -> Result<Vec<usize>, String> {
        case[key]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|v| v.as_u64().map(|v| v as usize))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or(format!(
                "case {name}: \"{key}\" must be a list of non-negative integers"
            ))
    };
    let shape = vec![field("n")?, field("c")?, field("h")?, field("w")?];
    let op = case["op"]
        .as_str()
        .ok_or(format!("case {name}: \"op\" missing"))?;
    let global = case.get("global").and_then(Value::as_bool).unwrap_or(false);
    let desc = match (op, global) {
        ("max", true) => PoolDesc::global_max(),
        ("avg", true) => PoolDesc::global_average(),
        ("max", false) | ("avg", false) => {
            let pad = list("pad")?;
            if pad.len() != 4 {
                return Err(format!(
                    "case {name}: \"pad\" must be [top, bottom, left, right]"
                ));
            }
            let base = if op == "max" {
                PoolDesc::max(&list("k")?)
            } else {
                PoolDesc::average(&list("k")?)
            };
            let desc = base
                .strides(&list("stride")?)
                .padding(Padding::explicit(&[pad[0], pad[2]], &[pad[1], pad[3]]));
            match case.get("count_include_pad").and_then(Value::as_bool) {
                Some(include) if op == "avg" => desc.count_include_pad(include),
                _ => desc,
            }
        }
        (other, _) => return Err(format!("case {name}: op \"{other}\" is not max or avg")),
    };
    Ok(Case { name, desc, shape })
}
