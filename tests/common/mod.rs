//! Helpers shared by the integration tests.
#![allow(dead_code)]

use nnpool::{Layout, Plan, PoolError};

/// Reorders a dense `[N, C, spatial...]` tensor between channels-first and channels-last.
pub fn relayout(data: &[f32], shape: &[usize], from: Layout, to: Layout) -> Vec<f32> {
    if from == to {
        return data.to_vec();
    }
    let (n, c) = (shape[0], shape[1]);
    let plane: usize = shape[2..].iter().product();
    let mut out = vec![0.0; data.len()];
    for b in 0..n {
        for ch in 0..c {
            for p in 0..plane {
                let first = (b * c + ch) * plane + p;
                let last = (b * plane + p) * c + ch;
                match from {
                    Layout::ChannelsFirst => out[last] = data[first],
                    Layout::ChannelsLast => out[first] = data[last],
                }
            }
        }
    }
    out
}

/// Same reordering for indices.
pub fn relayout_indices(data: &[i64], shape: &[usize], from: Layout, to: Layout) -> Vec<i64> {
    let as_f: Vec<f32> = data.iter().map(|&i| f32::from_bits(i as u32)).collect();
    relayout(&as_f, shape, from, to)
        .iter()
        .map(|f| f.to_bits() as i64)
        .collect()
}

/// Runs a plan into a buffer with sentinels on both sides and checks that nothing outside the
/// output was written. Returns the output (and indices for max pooling).
pub fn run_guarded(
    plan: &Plan<f32>,
    input: &[f32],
    with_indices: bool,
) -> Result<(Vec<f32>, Option<Vec<i64>>), PoolError> {
    const GUARD: usize = 37;
    let sentinel = f32::from_bits(0x7fc0_dead);
    let len = plan.output_len();
    let mut out = vec![sentinel; len + 2 * GUARD];
    let mut idx = vec![-7i64; len + 2 * GUARD];
    if with_indices {
        plan.run_with_indices(
            input,
            &mut out[GUARD..GUARD + len],
            &mut idx[GUARD..GUARD + len],
        )?;
    } else {
        plan.run(input, &mut out[GUARD..GUARD + len])?;
    }
    let untouched = |s: &[f32]| s.iter().all(|v| v.to_bits() == sentinel.to_bits());
    assert!(
        untouched(&out[..GUARD]) && untouched(&out[GUARD + len..]),
        "output guard overwritten"
    );
    assert!(
        idx[..GUARD]
            .iter()
            .chain(&idx[GUARD + len..])
            .all(|&i| i == -7),
        "indices guard overwritten"
    );
    let indices = with_indices.then(|| idx[GUARD..GUARD + len].to_vec());
    Ok((out[GUARD..GUARD + len].to_vec(), indices))
}

/// Runs the reference.
pub fn run_reference(
    plan: &Plan<f32>,
    input: &[f32],
    with_indices: bool,
) -> (Vec<f32>, Option<Vec<i64>>) {
    let mut out = vec![0.0; plan.output_len()];
    let mut idx = vec![0; plan.output_len()];
    nnpool::reference::pool(plan, input, &mut out, with_indices.then_some(&mut idx[..]))
        .expect("reference run");
    (out, with_indices.then_some(idx))
}

/// Bit-for-bit equality, NaN payloads included.
pub fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The contract's equality for an op's results: bit for bit for max (it returns an input
/// element); for average and Lp bit for bit except that any NaN equals any NaN (arithmetic
/// leaves NaN payloads unspecified, in Rust as in IEEE 754).
pub fn same_results(op: nnpool::PoolOp, a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.to_bits() == y.to_bits() || (op != nnpool::PoolOp::Max && x.is_nan() && y.is_nan())
        })
}

/// Whether `ours` is within the documented bound of the reference's `reference` for a window
/// whose input elements are `terms`, summed in another order: for average and L1,
/// `|ours - ref| <= 2 (n - 1) eps sum|x| / |divisor| + 2 eps |ref|`; for L2 the same on the
/// squares, `|ours^2 - ref^2| <= 2 (n - 1) eps sum x^2 + 4 eps ref^2`.
pub fn within_sum_bound(
    op: nnpool::PoolOp,
    divisor: f32,
    terms: &[f32],
    ours: f32,
    reference: f32,
) -> bool {
    if ours.to_bits() == reference.to_bits() || (ours.is_nan() && reference.is_nan()) {
        return true;
    }
    let eps = f32::EPSILON as f64;
    let n = terms.len() as f64;
    let reorder = 2.0 * (n - 1.0).max(0.0) * eps;
    let (o, r) = (ours as f64, reference as f64);
    match op {
        nnpool::PoolOp::Lp { p: 2.0 } => {
            let squares: f64 = terms.iter().map(|&x| (x as f64) * (x as f64)).sum();
            (o * o - r * r).abs() <= reorder * squares + 4.0 * eps * r * r
        }
        _ => {
            let absolute: f64 = terms.iter().map(|&x| (x as f64).abs()).sum();
            (o - r).abs() <= reorder * absolute / (divisor as f64).abs() + 2.0 * eps * r.abs()
        }
    }
}

/// Checks a plan's output against the reference by the contract: max values and indices bit
/// for bit; average and Lp bit for bit too, except global channels-first sums (taken in a fixed
/// 16-partial order), which must lie within [`sum_tolerance`].
pub fn check_against_reference(
    plan: &Plan<f32>,
    input: &[f32],
    out: &[f32],
    idx: &Option<Vec<i64>>,
) -> Result<(), String> {
    let with_indices = idx.is_some();
    let (reference, reference_idx) = run_reference(plan, input, with_indices);
    if *idx != reference_idx {
        return Err(format!(
            "indices differ: {idx:?} vs reference {reference_idx:?}"
        ));
    }
    let reordered_sums = plan.op() != nnpool::PoolOp::Max
        && plan.is_global()
        && plan.layout() == Layout::ChannelsFirst;
    if !reordered_sums {
        return if same_results(plan.op(), out, &reference) {
            Ok(())
        } else {
            let at = (0..out.len())
                .position(|i| !same_results(plan.op(), &out[i..i + 1], &reference[i..i + 1]))
                .unwrap_or(0);
            Err(format!(
                "output[{at}] = {:e} ({:#x}), reference {:e} ({:#x}) [kernel {}]",
                out[at],
                out[at].to_bits(),
                reference[at],
                reference[at].to_bits(),
                plan.kernel_name()
            ))
        };
    }
    let plane = plan.input_len() / out.len();
    let divisor = plan.divisor_override().unwrap_or(plane as f32);
    for (i, (&o, &r)) in out.iter().zip(&reference).enumerate() {
        let terms = &input[i * plane..(i + 1) * plane];
        if !within_sum_bound(plan.op(), divisor, terms, o, r) {
            return Err(format!(
                "output[{i}] = {o:e}, reference {r:e}: beyond the accuracy bound"
            ));
        }
    }
    Ok(())
}
