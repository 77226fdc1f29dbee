//! Output-size and padding arithmetic against tables worked out by hand from each framework's
//! documented formula (the working is in the comments), not from this crate's code.

use nnpool::{Layout, Padding, Plan, PoolDesc, PoolError};

fn plan_1d(desc: PoolDesc, input: usize) -> Result<Plan<f32>, PoolError> {
    Plan::new(&desc, Layout::ChannelsFirst, &[1, 1, input])
}

/// PyTorch `MaxPool1d` docs: `L_out = floor((L_in + 2p - d(k-1) - 1) / s + 1)`, with `ceil`
/// instead of `floor` in ceil mode, and the last window dropped if it starts in the right padding.
#[test]
fn pytorch_floor_and_ceil_mode() {
    // (L_in, k, s, p, d, ceil, L_out)
    let table = [
        (112, 3, 2, 1, 1, false, 56), // ResNet stem: (112 + 2 - 2 - 1) / 2 + 1 = 55.5 + 1 -> 56
        (55, 3, 2, 0, 1, false, 27),  // AlexNet: (55 - 3) / 2 + 1 = 27
        (55, 3, 2, 0, 1, true, 27),   // ceil(26) + 1 = 27
        (6, 3, 2, 0, 1, false, 2),    // (6 - 3) / 2 + 1 = 2.5 -> 2
        (6, 3, 2, 0, 1, true, 3),     // ceil(1.5) + 1 = 3; last window starts at 4 < 6: kept
        (5, 2, 2, 0, 1, true, 3),     // ceil(1.5) + 1 = 3; last window starts at 4 < 5: kept
        (5, 2, 2, 1, 1, true, 3),     // ceil((5+2-2)/2) + 1 = 4; last starts at 6 >= 5 + 1: 3
        (2, 3, 3, 1, 1, true, 1),     // ceil(1/3) + 1 = 2; last starts at 3 >= 2 + 1: 1
        (10, 3, 1, 0, 2, false, 6),   // (10 - 2*2 - 1) / 1 + 1 = 6
        (10, 3, 3, 1, 2, true, 4),    // ceil((10 + 2 - 5) / 3) + 1 = 4; last starts at 9 < 11
        (7, 7, 1, 0, 1, false, 1),    // window = input
        (4, 2, 5, 0, 1, false, 1),    // stride > window: (4 - 2) / 5 + 1 = 1
    ];
    for (input, k, s, p, d, ceil, expected) in table {
        let desc = PoolDesc::max(&[k])
            .strides(&[s])
            .dilations(&[d])
            .padding(Padding::symmetric(&[p]))
            .ceil_mode(ceil);
        let plan = plan_1d(desc, input).unwrap();
        assert_eq!(
            plan.output_shape()[2],
            expected,
            "in {input} k {k} s {s} p {p} d {d} ceil {ceil}"
        );
    }
}

/// Keras/TF `same`: `out = ceil(in / s)`, total pad `max((out-1)s + k - in, 0)`, the extra one
/// at the end; ONNX `SAME_LOWER` puts it at the begin; `valid`: `out = floor((in - k) / s) + 1`.
#[test]
fn keras_and_onnx_auto_padding() {
    // (in, k, s, d, padding, out, pad_begin, pad_end)
    let table = [
        (7, 3, 2, 1, Padding::SameUpper, 4, 1, 1), // ceil(3.5) = 4; 3*2 + 3 - 7 = 2 -> 1/1
        (8, 3, 2, 1, Padding::SameUpper, 4, 0, 1), // 4; 3*2 + 3 - 8 = 1 -> 0/1
        (8, 3, 2, 1, Padding::SameLower, 4, 1, 0), // same total, odd one first
        (5, 2, 1, 1, Padding::SameUpper, 5, 0, 1), // 5; 4 + 2 - 5 = 1
        (5, 2, 1, 1, Padding::SameLower, 5, 1, 0),
        (8, 2, 3, 1, Padding::SameUpper, 3, 0, 0), // ceil(8/3) = 3; 2*3 + 2 - 8 = 0
        (9, 1, 4, 1, Padding::SameUpper, 3, 0, 0), // 3; 8 + 1 - 9 = 0
        (6, 3, 1, 2, Padding::SameUpper, 6, 2, 2), // dilated: ek = 5; 5 + 5 - 6 = 4 -> 2/2
        (6, 2, 1, 3, Padding::SameLower, 6, 2, 1), // ek = 4; 5 + 4 - 6 = 3 -> lower 2/1
        (7, 3, 2, 1, Padding::Valid, 3, 0, 0),     // (7 - 3) / 2 + 1 = 3
        (8, 2, 2, 1, Padding::Valid, 4, 0, 0),
        (5, 2, 1, 2, Padding::Valid, 3, 0, 0), // (5 - 3) / 1 + 1 = 3
    ];
    for (input, k, s, d, padding, out, pb, pe) in table {
        let desc = PoolDesc::average(&[k])
            .strides(&[s])
            .dilations(&[d])
            .padding(padding.clone());
        let plan = plan_1d(desc, input).unwrap();
        assert_eq!(
            (
                plan.output_shape()[2],
                plan.pads_begin()[0],
                plan.pads_end()[0]
            ),
            (out, pb, pe),
            "in {input} k {k} s {s} d {d} {padding:?}"
        );
    }
}

/// ONNX explicit asymmetric pads: `out = floor((in + pb + pe - ek) / s) + 1` per axis, the
/// pads given as `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]`.
#[test]
fn onnx_explicit_asymmetric_pads_per_axis() {
    let desc = PoolDesc::max(&[3, 2, 4])
        .strides(&[1, 2, 3])
        .padding(Padding::explicit(&[0, 1, 2], &[2, 0, 1]));
    let plan = Plan::<f32>::new(&desc, Layout::ChannelsLast, &[2, 3, 5, 6, 9]).unwrap();
    // D: (5 + 0 + 2 - 3) / 1 + 1 = 5; H: (6 + 1 + 0 - 2) / 2 + 1 = 3; W: (9 + 3 - 4) / 3 + 1 = 3
    assert_eq!(plan.output_shape(), &[2, 3, 5, 3, 3]);
    assert_eq!(plan.pads_begin(), vec![0, 1, 2]);
    assert_eq!(plan.pads_end(), vec![2, 0, 1]);
}

#[test]
fn defaults_stride_is_kernel_and_global_is_whole_extent() {
    let plan = Plan::<f32>::new(
        &PoolDesc::max(&[2, 3]),
        Layout::ChannelsFirst,
        &[1, 1, 8, 9],
    )
    .unwrap();
    assert_eq!(plan.strides(), vec![2, 3]);
    assert_eq!(plan.output_shape(), &[1, 1, 4, 3]);
    let plan = Plan::<f32>::new(
        &PoolDesc::global_average(),
        Layout::ChannelsLast,
        &[4, 7, 3, 5, 2],
    )
    .unwrap();
    assert_eq!(plan.output_shape(), &[4, 7, 1, 1, 1]);
    assert_eq!(plan.kernel(), vec![3, 5, 2]);
}
