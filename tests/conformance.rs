//! Conformance with real frameworks: golden data from the ONNX backend node tests, the
//! PyTorch-computed ONNX tests and onnxruntime, produced by `tools/gen_conformance.py` and
//! committed in `tests/conformance/cases.json`. Each case runs through the plan in both layouts
//! and through the reference.

mod common;

use base64::Engine;
use nnpool::{Layout, Padding, Plan, PoolDesc, PoolOp};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f32> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("valid base64");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("integer") as usize)
        .collect()
}

fn desc(case: &Value) -> PoolDesc {
    let op = match case["op"].as_str().unwrap() {
        "max" => PoolOp::Max,
        "avg" => PoolOp::Average,
        "lp" => PoolOp::Lp {
            p: case["p"].as_f64().unwrap() as f32,
        },
        other => panic!("unknown op {other}"),
    };
    if case["global"].as_bool().unwrap() {
        return PoolDesc::global(op);
    }
    let rank = case["kernel"].as_array().unwrap().len();
    let pads = usizes(&case["pads"]);
    let padding = match case["padding"].as_str().unwrap() {
        "explicit" => Padding::explicit(&pads[..rank], &pads[rank..]),
        "valid" => Padding::Valid,
        "same_upper" => Padding::SameUpper,
        "same_lower" => Padding::SameLower,
        other => panic!("unknown padding {other}"),
    };
    let mut desc = PoolDesc::new(op, &usizes(&case["kernel"]))
        .strides(&usizes(&case["strides"]))
        .dilations(&usizes(&case["dilations"]))
        .padding(padding);
    if case["ceil_mode"].as_bool().unwrap() {
        desc = desc.ceil_mode(true);
    }
    if op == PoolOp::Average {
        desc = desc.count_include_pad(case["count_include_pad"].as_bool().unwrap());
    }
    desc
}

/// Average and Lp sums may be taken in another order by the framework: a few ulps of the result
/// (relative to its magnitude, with an absolute floor for results near zero), or the case's own
/// absolute tolerance where its golden output was rounded by hand.
fn close(ours: f32, golden: f32, abs_tolerance: f32) -> bool {
    if ours.to_bits() == golden.to_bits() || (ours.is_nan() && golden.is_nan()) {
        return true;
    }
    let error = (ours - golden).abs();
    error <= 4.0 * f32::EPSILON * golden.abs().max(1.0) || error <= abs_tolerance
}

/// ONNX MaxPool indices: the flat index in the whole NCHW tensor, row-major
/// (`storage_order = 0`) or column-major within the plane (`storage_order = 1`, 2-D).
fn onnx_index(plane_index: i64, n: usize, c: usize, shape: &[usize], storage_order: u64) -> i64 {
    let plane: usize = shape[2..].iter().product();
    let within = if storage_order == 1 {
        let (h, w) = (shape[2] as i64, shape[3] as i64);
        (plane_index % w) * h + plane_index / w
    } else {
        plane_index
    };
    ((n * shape[1] + c) * plane) as i64 + within
}

fn check_case(case: &Value) -> Result<(), String> {
    let shape = usizes(&case["input_shape"]);
    let input = floats(&case["input"]);
    let golden = floats(&case["output"]);
    let desc = desc(case);
    let plan = Plan::<f32>::new(&desc, Layout::ChannelsFirst, &shape)
        .map_err(|e| format!("plan rejected: {e}"))?;
    if plan.output_shape() != usizes(&case["output_shape"]) {
        return Err(format!(
            "output shape {:?}, golden {}",
            plan.output_shape(),
            case["output_shape"]
        ));
    }
    let with_indices = case.get("indices").is_some();
    let (ours, indices) =
        common::run_guarded(&plan, &input, with_indices).map_err(|e| e.to_string())?;
    let exact = case["op"] == "max";
    let abs_tolerance = case
        .get("abs_tolerance")
        .and_then(Value::as_f64)
        .unwrap_or(0.0) as f32;
    for (i, (&o, &g)) in ours.iter().zip(&golden).enumerate() {
        let ok = if exact {
            o.to_bits() == g.to_bits()
        } else {
            close(o, g, abs_tolerance)
        };
        if !ok {
            return Err(format!("output[{i}] = {o:e}, golden {g:e}"));
        }
    }
    if let Some(ours) = &indices {
        let golden = case["indices"].as_array().unwrap();
        let order = case
            .get("storage_order")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let out_plane: usize = plan.output_shape()[2..].iter().product();
        for (i, (&o, g)) in ours.iter().zip(golden).enumerate() {
            let nc = i / out_plane;
            let converted = onnx_index(o, nc / shape[1], nc % shape[1], &shape, order);
            if converted != g.as_i64().unwrap() {
                return Err(format!(
                    "indices[{i}] = {converted} (plane {o}), golden {g}"
                ));
            }
        }
    }
    // The plan agrees with the reference as the contract says, in both layouts.
    common::check_against_reference(&plan, &input, &ours, &indices)
        .map_err(|e| format!("channels-first vs reference: {e}"))?;
    let nhwc = Plan::<f32>::new(&desc, Layout::ChannelsLast, &shape).map_err(|e| e.to_string())?;
    let input_last = common::relayout(&input, &shape, Layout::ChannelsFirst, Layout::ChannelsLast);
    let (last, last_indices) =
        common::run_guarded(&nhwc, &input_last, with_indices).map_err(|e| e.to_string())?;
    common::check_against_reference(&nhwc, &input_last, &last, &last_indices)
        .map_err(|e| format!("channels-last vs reference: {e}"))?;
    Ok(())
}

#[test]
fn golden_cases_from_frameworks() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/cases.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    let mut by_source = std::collections::BTreeMap::<String, usize>::new();
    for case in cases {
        *by_source
            .entry(case["source"].as_str().unwrap().to_string())
            .or_default() += 1;
        if let Err(e) = check_case(case) {
            failures.push(format!(
                "{} ({}): {e}",
                case["name"].as_str().unwrap(),
                case["source"]
            ));
        }
    }
    println!("checked {} golden cases: {by_source:?}", cases.len());
    assert!(
        cases.len() >= 150,
        "the golden data lost cases: {}",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
