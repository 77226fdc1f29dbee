//! Property tests: for random ranks, shapes, windows, strides, dilations, pads, padding modes,
//! ceil mode, ops and layouts, with values that include −∞, +∞, NaN, ties and all-negative
//! inputs, the plan's output equals the reference's bit for bit, channels-last equals the
//! transposed channels-first result, max values sit at their indices, and the output shape
//! follows the documented formulas.

mod common;

use nnpool::{Layout, Padding, Plan, PoolDesc, PoolError, PoolOp};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Case {
    shape: Vec<usize>,
    desc: PoolDesc,
    layout: Layout,
    ceil_mode: bool,
    values: Vec<f32>,
}

fn op() -> impl Strategy<Value = PoolOp> {
    prop_oneof![
        3 => Just(PoolOp::Max),
        2 => Just(PoolOp::Average),
        1 => prop_oneof![Just(1.0f32), Just(2.0), Just(3.0), Just(1.5)].prop_map(|p| PoolOp::Lp { p }),
    ]
}

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -100.0f32..100.0,
        3 => (-3i32..4).prop_map(|v| v as f32), // ties
        1 => Just(f32::NEG_INFINITY),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NAN),
        // NaNs with payloads and signs, one signaling: max keeps the last NaN's bits.
        1 => prop_oneof![
            Just(f32::from_bits(0x7f80_0001)),
            Just(f32::from_bits(0xffc0_0123)),
            Just(f32::from_bits(0x7fc0_4567)),
        ],
        1 => Just(-0.0f32),
        1 => Just(0.0f32),
    ]
}

/// Random cases; `wide` makes the last axis 24..=80 long (rank 1 or 2), so that channels-first
/// rows are long enough for the row kernels rather than the small-planes one.
fn case(wide: bool) -> impl Strategy<Value = Case> {
    (
        if wide { 1usize..=2 } else { 1usize..=3 },
        1usize..=2,
        1usize..=5,
        op(),
        any::<bool>(),
        0u8..10,
    )
        .prop_flat_map(move |(rank, n, c, op, last, window_kind)| {
            let max_size = if rank == 3 || wide { 6 } else { 10 };
            let spatial =
                proptest::collection::vec(1usize..=max_size, rank).prop_flat_map(move |spatial| {
                    let last = if wide {
                        24usize..=80
                    } else {
                        1usize..=max_size
                    };
                    last.prop_map(move |x| {
                        let mut spatial = spatial.clone();
                        *spatial.last_mut().unwrap() = x;
                        spatial
                    })
                });
            let per_axis = |lo: usize, hi: usize| proptest::collection::vec(lo..=hi, rank);
            (
                spatial,
                per_axis(1, 4),
                per_axis(1, 4),
                per_axis(1, 3),
                per_axis(0, 3),
                per_axis(0, 3),
                0u8..4,
                any::<bool>(),
                any::<bool>(),
                prop_oneof![
                    Just(None),
                    (-4i32..6)
                        .prop_filter("nonzero", |d| *d != 0)
                        .prop_map(Some)
                ],
                any::<bool>(),
            )
                .prop_map(
                    move |(spatial, k, s, d, pb, pe, mode, ceil, cip, divisor, negative)| {
                        let mut shape = vec![n, c];
                        shape.extend(&spatial);
                        let desc = if window_kind == 0 {
                            PoolDesc::global(op)
                        } else {
                            let padding = match mode {
                                0 | 1 => Padding::explicit(&pb, &pe),
                                2 => Padding::SameUpper,
                                _ => {
                                    if ceil {
                                        Padding::Valid
                                    } else {
                                        Padding::SameLower
                                    }
                                }
                            };
                            let mut desc = PoolDesc::new(op, &k)
                                .strides(&s)
                                .dilations(&d)
                                .padding(padding);
                            if mode <= 1 && ceil {
                                desc = desc.ceil_mode(true);
                            }
                            desc
                        };
                        let desc = match (op, divisor) {
                            (PoolOp::Average, Some(div)) => desc.divisor_override(div as f32),
                            (PoolOp::Average, None) => desc.count_include_pad(cip),
                            _ => desc,
                        };
                        let layout = if last {
                            Layout::ChannelsLast
                        } else {
                            Layout::ChannelsFirst
                        };
                        let ceil_mode = window_kind != 0 && mode <= 1 && ceil;
                        (shape, desc, layout, ceil_mode, negative)
                    },
                )
        })
        .prop_flat_map(|(shape, desc, layout, ceil_mode, negative)| {
            let len: usize = shape.iter().product();
            proptest::collection::vec(value(), len).prop_map(move |mut values| {
                if negative {
                    // All-negative input: padding must never win a max.
                    values.iter_mut().for_each(|v| *v = -v.abs() - 1.0);
                }
                Case {
                    shape: shape.clone(),
                    desc: desc.clone(),
                    layout,
                    ceil_mode,
                    values,
                }
            })
        })
}

/// Whether some window of the axis holds no input element, by brute force.
fn has_empty_window(input: i64, k: i64, s: i64, d: i64, pb: i64, out: i64) -> bool {
    (0..out).any(|o| (0..k).all(|j| !(0..input).contains(&(o * s - pb + j * d))))
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let plan = match Plan::<f32>::new(&case.desc, case.layout, &case.shape) {
        Ok(plan) => plan,
        Err(e) => {
            let expected_rejection = matches!(
                e,
                PoolError::WindowLargerThanInput { .. } | PoolError::EmptyWindow { .. }
            );
            prop_assert!(expected_rejection, "unexpected error {e}");
            return Ok(());
        }
    };
    // Shape per the formulas, and no empty window slipped through.
    if case.desc.kernel().is_some() {
        for (i, &input) in case.shape[2..].iter().enumerate() {
            let (k, s, d) = (
                plan.kernel()[i] as i64,
                plan.strides()[i] as i64,
                plan.dilations()[i] as i64,
            );
            let (pb, pe) = (plan.pads_begin()[i] as i64, plan.pads_end()[i] as i64);
            let pads = (pb as i128, pe as i128);
            let extent = |x: i64| x as i128;
            let out = nnpool::testing::expected_extent(
                extent(input as i64),
                extent(k),
                extent(s),
                extent(d),
                pads,
                case.ceil_mode,
            )
            .expect("an accepted plan has a positive extent") as i64;
            prop_assert_eq!(plan.output_shape()[2 + i] as i64, out, "axis {}", i);
            prop_assert!(!has_empty_window(input as i64, k, s, d, pb, out));
        }
    }
    let with_indices = plan.op() == PoolOp::Max;
    // Buffers shifted by a number of elements that varies with the case (vector alignment).
    let shift = case.values.len() % 16;
    if with_indices {
        // Max without indices runs other kernels (value-only, separable).
        let (values_only, _) =
            common::run_guarded_shifted(&plan, &case.values, false, shift).unwrap();
        if let Err(e) = common::check_against_reference(&plan, &case.values, &values_only, &None) {
            return Err(TestCaseError::fail(format!("{e} (without indices)")));
        }
    }
    let (out, idx) = common::run_guarded_shifted(&plan, &case.values, with_indices, shift).unwrap();
    if let Err(e) = common::check_against_reference(&plan, &case.values, &out, &idx) {
        return Err(TestCaseError::fail(format!(
            "{e} (kernel {})",
            plan.kernel_name()
        )));
    }

    // Max values sit at their indices.
    if let Some(idx) = &idx {
        let first = common::relayout(
            &case.values,
            &case.shape,
            case.layout,
            Layout::ChannelsFirst,
        );
        let out_first = common::relayout(
            &out,
            plan.output_shape(),
            case.layout,
            Layout::ChannelsFirst,
        );
        let idx_first =
            common::relayout_indices(idx, plan.output_shape(), case.layout, Layout::ChannelsFirst);
        let in_plane: usize = case.shape[2..].iter().product();
        let out_plane: usize = plan.output_shape()[2..].iter().product();
        for (o, (&v, &i)) in out_first.iter().zip(&idx_first).enumerate() {
            prop_assert!(i >= 0 && (i as usize) < in_plane);
            let source = first[(o / out_plane) * in_plane + i as usize];
            prop_assert_eq!(source.to_bits(), v.to_bits());
        }
    }

    // The other layout gives the same result, transposed.
    let other = match case.layout {
        Layout::ChannelsFirst => Layout::ChannelsLast,
        Layout::ChannelsLast => Layout::ChannelsFirst,
    };
    let other_plan = Plan::<f32>::new(&case.desc, other, &case.shape).unwrap();
    let other_input = common::relayout(&case.values, &case.shape, case.layout, other);
    let (other_out, other_idx) =
        common::run_guarded(&other_plan, &other_input, with_indices).unwrap();
    let back = common::relayout(&other_out, plan.output_shape(), other, case.layout);
    let back_idx = other_idx
        .as_ref()
        .map(|i| common::relayout_indices(i, plan.output_shape(), other, case.layout));
    prop_assert_eq!(&back_idx, &idx);
    if !(plan.is_global() && plan.op() != PoolOp::Max) {
        // Everything but global channels-first sums is exact, so the layouts agree bit for bit.
        prop_assert!(common::same_results(plan.op(), &back, &out));
    }
    if let Err(e) =
        common::check_against_reference(&other_plan, &other_input, &other_out, &other_idx)
    {
        return Err(TestCaseError::fail(format!(
            "{e} (kernel {})",
            other_plan.kernel_name()
        )));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn plan_matches_reference(case in case(false)) {
        check(&case)?;
    }

    #[test]
    fn long_rows_match_reference(case in case(true)) {
        check(&case)?;
    }
}
