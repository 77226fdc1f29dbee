//! The contract's rules on small inputs worked out by hand: NaN, −∞ padding, ties, indices, the
//! average divisors, Lp, global pooling, 1-D and 3-D, both layouts.

mod common;

use nnpool::{Layout, Padding, Plan, PoolDesc};

/// Runs `desc` on a single-image, single-channel input in channels-first layout (checking both
/// layouts against the reference) and returns output and indices.
fn run(desc: &PoolDesc, spatial: &[usize], input: &[f32]) -> (Vec<f32>, Option<Vec<i64>>) {
    let mut shape = vec![1, 1];
    shape.extend_from_slice(spatial);
    let plan = Plan::<f32>::new(desc, Layout::ChannelsFirst, &shape).unwrap();
    let with_indices = plan.op() == nnpool::PoolOp::Max;
    let (out, idx) = common::run_guarded(&plan, input, with_indices).unwrap();
    common::check_against_reference(&plan, input, &out, &idx).unwrap();
    let last = Plan::<f32>::new(desc, Layout::ChannelsLast, &shape).unwrap();
    let (out_last, idx_last) = common::run_guarded(&last, input, with_indices).unwrap();
    common::check_against_reference(&last, input, &out_last, &idx_last).unwrap();
    (out, idx)
}

#[test]
fn max_padding_never_wins_over_negative_inputs() {
    let desc = PoolDesc::max(&[3, 3])
        .strides(&[1, 1])
        .padding(Padding::symmetric(&[1, 1]));
    let input = [-5.0, -4.0, -3.0, -2.0];
    let (out, idx) = run(&desc, &[2, 2], &input);
    assert_eq!(out, vec![-2.0; 4]);
    assert_eq!(idx.unwrap(), vec![3; 4]);
}

#[test]
fn nan_propagates_and_the_last_nan_wins() {
    let nan_a = f32::from_bits(0x7fc0_0001);
    let nan_b = f32::from_bits(0xffc0_0002);
    // Windows of 2: [1, nan_a], [nan_a, 3], [3, nan_b] ... 1-D, stride 1.
    let desc = PoolDesc::max(&[2]).strides(&[1]);
    let input = [1.0, nan_a, 3.0, nan_b, nan_a, 2.0];
    let (out, idx) = run(&desc, &[6], &input);
    let bits: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
    assert_eq!(
        bits,
        vec![
            nan_a.to_bits(),
            nan_a.to_bits(),
            nan_b.to_bits(),
            nan_a.to_bits(),
            nan_a.to_bits()
        ]
    );
    assert_eq!(idx.unwrap(), vec![1, 1, 3, 4, 4]);
    // Average and Lp propagate NaN too.
    let (avg, _) = run(&PoolDesc::average(&[2]).strides(&[1]), &[6], &input);
    assert!(avg[..5].iter().all(|v| v.is_nan()));
    let (lp, _) = run(&PoolDesc::lp(&[3], 2.0), &[6], &input);
    assert!(lp.iter().all(|v| v.is_nan()));
}

#[test]
fn first_maximum_wins_ties_in_row_major_order() {
    // 3x3 window over a 3x3 plane holding 7 at (0, 2), (1, 0) and (2, 2).
    let input = [1.0, 0.0, 7.0, 7.0, 0.0, 0.0, 0.0, 0.0, 7.0];
    let (out, idx) = run(&PoolDesc::max(&[3, 3]), &[3, 3], &input);
    assert_eq!((out, idx.unwrap()), (vec![7.0], vec![2]));
    // All -inf: the value is -inf and the index the window's first input element.
    let desc = PoolDesc::max(&[2, 2])
        .strides(&[1, 1])
        .padding(Padding::explicit(&[1, 1], &[0, 0]));
    let (out, idx) = run(&desc, &[2, 2], &[f32::NEG_INFINITY; 4]);
    assert_eq!(out, vec![f32::NEG_INFINITY; 4]);
    assert_eq!(idx.unwrap(), vec![0, 0, 0, 0]);
    // +inf beats everything; -0.0 and +0.0 are equal, so the first one stays.
    let (out, idx) = run(&PoolDesc::max(&[4]), &[4], &[-0.0, 0.0, -1.0, -2.0]);
    assert_eq!(
        (out[0].to_bits(), idx.unwrap()),
        ((-0.0f32).to_bits(), vec![0])
    );
    let (out, _) = run(&PoolDesc::max(&[2]), &[2], &[f32::MAX, f32::INFINITY]);
    assert_eq!(out, vec![f32::INFINITY]);
}

#[test]
fn average_divisors() {
    // 1-D input [1, 2, 3, 4, 5], kernel 3, stride 2, pads 1/0, ceil mode:
    // ceil((5 + 1 - 3) / 2) + 1 = 3 windows, starting at -1, 1 and 3.
    let input = [1.0, 2.0, 3.0, 4.0, 5.0];
    let base = PoolDesc::average(&[3])
        .strides(&[2])
        .padding(Padding::explicit(&[1], &[0]))
        .ceil_mode(true);
    // Window at 3 covers 3, 4, 5: positions 3 and 4 are input, 5 lies past the end padding.
    let (out, _) = run(&base, &[5], &input);
    assert_eq!(
        out,
        vec![
            (1.0 + 2.0) / 2.0,
            (2.0 + 3.0 + 4.0) / 3.0,
            (4.0 + 5.0) / 2.0
        ]
    );
    // count_include_pad: the first window counts its padding tap, the overhang is not counted.
    let (out, _) = run(&base.clone().count_include_pad(true), &[5], &input);
    assert_eq!(
        out,
        vec![
            (1.0 + 2.0) / 3.0,
            (2.0 + 3.0 + 4.0) / 3.0,
            (4.0 + 5.0) / 2.0
        ]
    );
    // With end padding 1 the overhanging tap is inside the padded input and counts.
    let padded = PoolDesc::average(&[3])
        .strides(&[2])
        .padding(Padding::symmetric(&[1]))
        .count_include_pad(true);
    let (out, _) = run(&padded, &[5], &input);
    assert_eq!(
        out,
        vec![
            (1.0 + 2.0) / 3.0,
            (2.0 + 3.0 + 4.0) / 3.0,
            (4.0 + 5.0) / 3.0
        ]
    );
    // divisor_override replaces the divisor everywhere.
    let (out, _) = run(&base.divisor_override(4.0), &[5], &input);
    assert_eq!(
        out,
        vec![
            (1.0 + 2.0) / 4.0,
            (2.0 + 3.0 + 4.0) / 4.0,
            (4.0 + 5.0) / 4.0
        ]
    );
}

#[test]
fn average_with_dilation_counts_only_taps() {
    // 2-D, kernel 2x2, dilation 2, stride 1 on a 3x3 plane: the single window's taps are the corners.
    let input = [1.0, 10.0, 2.0, 10.0, 10.0, 10.0, 3.0, 10.0, 4.0];
    let (out, _) = run(
        &PoolDesc::average(&[2, 2]).dilations(&[2, 2]),
        &[3, 3],
        &input,
    );
    assert_eq!(out, vec![2.5]);
    let (out, idx) = run(&PoolDesc::max(&[2, 2]).dilations(&[2, 2]), &[3, 3], &input);
    assert_eq!((out, idx.unwrap()), (vec![4.0], vec![8]));
}

#[test]
fn lp_pooling() {
    let input = [3.0, -4.0, 1.0, 2.0, -2.0, 0.0];
    let (l2, _) = run(&PoolDesc::lp(&[2], 2.0), &[6], &input);
    assert_eq!(l2, vec![5.0, (5.0f32).sqrt(), 2.0]);
    let (l1, _) = run(&PoolDesc::lp(&[3], 1.0), &[6], &input);
    assert_eq!(l1, vec![8.0, 4.0]);
    let (l3, _) = run(&PoolDesc::lp(&[2], 3.0), &[6], &input);
    let expected = (27.0f32 + 64.0).powf(1.0 / 3.0);
    assert!((l3[0] - expected).abs() <= 2.0 * f32::EPSILON * expected);
    // Padding adds 0.
    let padded = PoolDesc::lp(&[3], 2.0)
        .strides(&[3])
        .padding(Padding::symmetric(&[1]));
    let (out, _) = run(&padded, &[6], &input);
    // Windows at -1 (pad, 3, -4) and 2 (1, 2, -2).
    assert_eq!(out, vec![5.0, 3.0]);
}

#[test]
fn global_pooling_and_ranks() {
    let input: Vec<f32> = (0..24).map(|i| ((i * 7) % 24) as f32 - 10.0).collect();
    // 3-D: [2, 3, 4] volume.
    let (out, idx) = run(&PoolDesc::global_max(), &[2, 3, 4], &input);
    let max = input.iter().cloned().fold(f32::MIN, f32::max);
    let at = input.iter().position(|&v| v == max).unwrap() as i64;
    assert_eq!((out, idx.unwrap()), (vec![max], vec![at]));
    let (avg, _) = run(&PoolDesc::global_average(), &[4, 6], &input);
    let sum: f32 = input.iter().sum();
    assert_eq!(avg, vec![sum / 24.0]);
    let (lp, _) = run(&PoolDesc::global_lp(1.0), &[24], &input);
    assert_eq!(lp, vec![input.iter().map(|v| v.abs()).sum::<f32>()]);
    // 3-D sliding window with a 3-D index: max of a 2x2x2 cube at the far corner.
    let (out, idx) = run(
        &PoolDesc::max(&[2, 2, 2]).strides(&[1, 1, 2]),
        &[2, 3, 4],
        &input,
    );
    assert_eq!(out.len(), 2 * 2);
    let idx = idx.unwrap();
    for (o, &i) in out.iter().zip(&idx) {
        assert_eq!(input[i as usize], *o, "index points at the value");
    }
}

#[test]
fn channels_last_with_several_channels() {
    // Two channels interleaved (NWC): channel 0 = [1, 5, 2, 8], channel 1 = [-1, -5, -2, -8].
    let input = [1.0, -1.0, 5.0, -5.0, 2.0, -2.0, 8.0, -8.0];
    let plan = Plan::<f32>::new(&PoolDesc::max(&[2]), Layout::ChannelsLast, &[1, 2, 4]).unwrap();
    let (out, idx) = plan.run_alloc_with_indices(&input).unwrap();
    assert_eq!(&out[..], &[5.0, -1.0, 8.0, -2.0]);
    assert_eq!(idx, vec![1, 0, 3, 2]);
    assert_eq!(out.as_ptr() as usize % nnpool::OUTPUT_ALIGN, 0);
}
