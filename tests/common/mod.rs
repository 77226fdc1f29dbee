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
    run_guarded_shifted(plan, input, with_indices, 0)
}

/// [`run_guarded`] with the input copied `shift` elements into a fresh buffer and the output
/// `shift` elements further on: kernels that start their loads on vector boundaries see each
/// way of being off one.
pub fn run_guarded_shifted(
    plan: &Plan<f32>,
    input: &[f32],
    with_indices: bool,
    shift: usize,
) -> Result<(Vec<f32>, Option<Vec<i64>>), PoolError> {
    let shifted: Vec<f32> = std::iter::repeat_n(0.0, shift)
        .chain(input.iter().copied())
        .collect();
    let input = &shifted[shift..];
    let guard = 37 + shift;
    let sentinel = f32::from_bits(0x7fc0_dead);
    let len = plan.output_len();
    let mut out = vec![sentinel; len + 2 * guard];
    let mut idx = vec![-7i64; len + 2 * guard];
    if with_indices {
        plan.run_with_indices(
            input,
            &mut out[guard..guard + len],
            &mut idx[guard..guard + len],
        )?;
    } else {
        plan.run(input, &mut out[guard..guard + len])?;
    }
    let untouched = |s: &[f32]| s.iter().all(|v| v.to_bits() == sentinel.to_bits());
    assert!(
        untouched(&out[..guard]) && untouched(&out[guard + len..]),
        "output guard overwritten"
    );
    assert!(
        idx[..guard]
            .iter()
            .chain(&idx[guard + len..])
            .all(|&i| i == -7),
        "indices guard overwritten"
    );
    let indices = with_indices.then(|| idx[guard..guard + len].to_vec());
    Ok((out[guard..guard + len].to_vec(), indices))
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

#[allow(unused_imports)]
pub use nnpool::testing::same_results;

/// The contract's comparison with the reference (see `nnpool::testing`).
pub fn check_against_reference(
    plan: &Plan<f32>,
    input: &[f32],
    out: &[f32],
    idx: &Option<Vec<i64>>,
) -> Result<(), String> {
    nnpool::testing::check_against_reference(plan, input, out, idx.as_deref())
}
