//! Test support shared by the integration tests and the fuzz targets (hidden from the docs):
//! the contract's comparison against the reference, and the fuzz entry points, which decode a
//! configuration from arbitrary bytes. The same functions run under cargo-fuzz (`fuzz/`) and in
//! the stable test that replays the committed corpus (`tests/fuzz_corpus.rs`).

use crate::{Isa, Layout, Padding, Plan, PoolDesc, PoolError, PoolOp, reference};

/// The contract's equality for an op's results: bit for bit for max (it returns an input
/// element); for average and Lp bit for bit except that any NaN equals any NaN (arithmetic
/// leaves NaN payloads unspecified).
pub fn same_results(op: PoolOp, a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.to_bits() == y.to_bits() || (op != PoolOp::Max && x.is_nan() && y.is_nan())
        })
}

/// Checks a plan's output (and indices) against the reference by the contract: max values and
/// indices bit for bit; average and Lp bit for bit too (NaN equals NaN): every kernel sums a
/// window in the reference's order.
pub fn check_against_reference(
    plan: &Plan<f32>,
    input: &[f32],
    out: &[f32],
    idx: Option<&[i64]>,
) -> Result<(), String> {
    let expected = Expected::of(plan, input)?;
    expected.check(plan, out, idx)
}

/// The reference's output and indices for one input, computed once and compared with many runs.
pub struct Expected {
    values: Vec<f32>,
    indices: Vec<i64>,
}

impl Expected {
    /// Runs the reference (with indices for max).
    pub fn of(plan: &Plan<f32>, input: &[f32]) -> Result<Expected, String> {
        let mut values = vec![0.0; plan.output_len()];
        let mut indices = vec![0; plan.output_len()];
        let wanted = (plan.op() == PoolOp::Max).then_some(&mut indices[..]);
        reference::pool(plan, input, &mut values, wanted).map_err(|e| e.to_string())?;
        Ok(Expected { values, indices })
    }

    /// Compares a run's output (and indices) with the reference's by the contract.
    pub fn check(&self, plan: &Plan<f32>, out: &[f32], idx: Option<&[i64]>) -> Result<(), String> {
        if out.len() != self.values.len() {
            return Err(format!(
                "output has {} elements, reference {}",
                out.len(),
                self.values.len()
            ));
        }
        if let Some(idx) = idx {
            if idx.len() != self.indices.len() {
                return Err(format!(
                    "indices have {} elements, reference {}",
                    idx.len(),
                    self.indices.len()
                ));
            }
            if let Some(at) = (0..idx.len()).find(|&i| idx[i] != self.indices[i]) {
                return Err(format!(
                    "indices[{at}] = {}, reference {}",
                    idx[at], self.indices[at]
                ));
            }
        }
        let reference = &self.values;
        let at = (0..out.len())
            .find(|&i| !same_results(plan.op(), &out[i..i + 1], &reference[i..i + 1]));
        match at {
            None => Ok(()),
            Some(at) => Err(format!(
                "output[{at}] = {:e} ({:#x}), reference {:e} ({:#x}) [kernel {}]",
                out[at],
                out[at].to_bits(),
                reference[at],
                reference[at].to_bits(),
                plan.kernel_name()
            )),
        }
    }
}

/// Reads a configuration from fuzzer bytes; past the end every read gives 0.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }

    /// The next byte.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A number in `0..n` (`n >= 1`).
    pub fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// A size for the descriptor target: mostly small, sometimes zero, huge or near an overflow.
    pub fn size(&mut self) -> usize {
        match self.below(8) {
            0 => 0,
            1 => usize::MAX - self.below(4),
            2 => 1usize << self.below(usize::BITS as usize),
            3 => (usize::MAX >> self.below(8)) / (1 + self.below(4)),
            4 => self.u32() as usize,
            _ => self.below(17),
        }
    }

    /// Whether any bytes are left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// The output extent of one axis by the contract's formulas, in wide signed arithmetic, or
/// `None` where the plan must refuse it.
pub fn expected_extent(
    input: i128,
    k: i128,
    s: i128,
    d: i128,
    pads: (i128, i128),
    ceil: bool,
) -> Option<i128> {
    let (pb, pe) = pads;
    let ek = d * (k - 1) + 1;
    let out = if ceil {
        let mut out = (input + pb + pe - ek + s - 1).div_euclid(s) + 1;
        if out >= 1 && (out - 1) * s >= input + pb {
            out -= 1;
        }
        out
    } else {
        (input + pb + pe - ek).div_euclid(s) + 1
    };
    (out >= 1).then_some(out)
}

/// Fuzz target `descriptor`: any descriptor and shape, including zeros, huge values and
/// overflowing products, gives a plan or a typed error, never a panic; an accepted plan's output
/// shape follows the contract's arithmetic.
pub fn fuzz_descriptor(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let dims = bytes.below(7);
    let shape: Vec<usize> = (0..dims).map(|_| bytes.size()).collect();
    let rank = dims.saturating_sub(2).max(1);
    let list = |bytes: &mut Bytes| -> Vec<usize> {
        // Mostly the right length, sometimes not.
        let len = if bytes.below(8) == 0 {
            bytes.below(5)
        } else {
            rank
        };
        (0..len).map(|_| bytes.size()).collect()
    };
    let op = match bytes.below(3) {
        0 => PoolOp::Max,
        1 => PoolOp::Average,
        _ => PoolOp::Lp {
            p: f32::from_bits(bytes.u32()),
        },
    };
    let mut desc = if bytes.below(6) == 0 {
        PoolDesc::global(op)
    } else {
        PoolDesc::new(op, &list(&mut bytes))
    };
    if bytes.below(2) == 0 {
        desc = desc.strides(&list(&mut bytes));
    }
    if bytes.below(3) == 0 {
        desc = desc.dilations(&list(&mut bytes));
    }
    match bytes.below(5) {
        0 => desc = desc.padding(Padding::explicit(&list(&mut bytes), &list(&mut bytes))),
        1 => desc = desc.padding(Padding::Valid),
        2 => desc = desc.padding(Padding::SameUpper),
        3 => desc = desc.padding(Padding::SameLower),
        _ => {}
    }
    if bytes.below(3) == 0 {
        desc = desc.ceil_mode(bytes.below(2) == 0);
    }
    if bytes.below(4) == 0 {
        desc = desc.count_include_pad(bytes.below(2) == 0);
    }
    if bytes.below(6) == 0 {
        desc = desc.divisor_override(f32::from_bits(bytes.u32()));
    }
    let layout = if bytes.below(2) == 0 {
        Layout::ChannelsFirst
    } else {
        Layout::ChannelsLast
    };
    let Ok(plan) = Plan::<f32>::new(&desc, layout, &shape) else {
        return;
    };
    // Accepted: the shape follows the formulas on every axis.
    let ceil = desc.ceil_mode == Some(true);
    for (i, &input) in shape[2..].iter().enumerate() {
        let out = plan.output_shape()[2 + i] as i128;
        let (k, s, d) = (
            plan.kernel()[i] as i128,
            plan.strides()[i] as i128,
            plan.dilations()[i] as i128,
        );
        let pads = (plan.pads_begin()[i] as i128, plan.pads_end()[i] as i128);
        let ceil_here = ceil && !plan.is_global();
        assert_eq!(
            Some(out),
            expected_extent(input as i128, k, s, d, pads, ceil_here),
            "axis {i}"
        );
    }
    assert_eq!(
        plan.input_len() as u128,
        shape.iter().map(|&x| x as u128).product::<u128>()
    );
    let out_product: u128 = plan.output_shape().iter().map(|&x| x as u128).product();
    assert_eq!(plan.output_len() as u128, out_product);
}

/// A small valid-looking configuration and its input, decoded from fuzzer bytes.
pub struct SmallCase {
    /// The descriptor.
    pub desc: PoolDesc,
    /// `[N, C, spatial...]`.
    pub shape: Vec<usize>,
    /// The memory layout.
    pub layout: Layout,
    /// Whether max pooling also returns indices.
    pub with_indices: bool,
}

/// Decodes a small configuration (at most about six thousand elements).
pub fn small_case(bytes: &mut Bytes) -> SmallCase {
    let rank = bytes.between(1, 3);
    let max_extent = if rank == 3 { 6 } else { 12 };
    let mut shape = vec![bytes.between(1, 2), bytes.between(1, 20)];
    shape.extend((0..rank).map(|_| bytes.between(1, max_extent)));
    let op = match bytes.below(6) {
        0..=2 => PoolOp::Max,
        3 => PoolOp::Average,
        _ => PoolOp::Lp {
            p: [1.0, 2.0, 3.0, 1.5][bytes.below(4)],
        },
    };
    let per_axis = |bytes: &mut Bytes, lo: usize, hi: usize| -> Vec<usize> {
        (0..rank).map(|_| bytes.between(lo, hi)).collect()
    };
    let mut desc = if bytes.below(8) == 0 {
        PoolDesc::global(op)
    } else {
        let kernel = per_axis(bytes, 1, 4);
        let strides = per_axis(bytes, 1, 4);
        let dilations = per_axis(bytes, 1, 3);
        let mut desc = PoolDesc::new(op, &kernel)
            .strides(&strides)
            .dilations(&dilations);
        match bytes.below(4) {
            0 => desc = desc.padding(Padding::Valid),
            1 => desc = desc.padding(Padding::SameUpper),
            2 => desc = desc.padding(Padding::SameLower),
            _ => {
                let (begin, end) = (per_axis(bytes, 0, 3), per_axis(bytes, 0, 3));
                desc = desc
                    .padding(Padding::explicit(&begin, &end))
                    .ceil_mode(bytes.below(2) == 0);
            }
        }
        desc
    };
    if op == PoolOp::Average {
        match bytes.below(3) {
            0 => desc = desc.divisor_override(bytes.between(1, 9) as f32 - 4.5),
            1 => desc = desc.count_include_pad(true),
            _ => {}
        }
    }
    let layout = if bytes.below(2) == 0 {
        Layout::ChannelsFirst
    } else {
        Layout::ChannelsLast
    };
    // Sometimes a long last axis (1-D and 2-D only, few channels), so that channels-first rows
    // reach the row kernels rather than the small-planes one. Decoded last, so that older corpus
    // inputs keep their configuration.
    if rank < 3 && bytes.below(4) == 3 {
        shape[1] = shape[1].min(3);
        *shape.last_mut().expect("a spatial axis") = bytes.between(24, 80);
    }
    SmallCase {
        desc,
        shape,
        layout,
        with_indices: op == PoolOp::Max && bytes.below(2) == 0,
    }
}

/// Fuzz target `differential`: small configurations with arbitrary f32 bit patterns (NaN
/// payloads, ±0, ±∞, subnormals) agree with the reference, on a level this CPU runs and a split
/// into 1 to 4 bands of output rows that the input chooses, with and without indices.
pub fn fuzz_differential(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let case = small_case(&mut bytes);
    let Ok(plan) = Plan::<f32>::new(&case.desc, case.layout, &case.shape) else {
        return;
    };
    // One level and one split per input (all of them per input ran 3x slower): the level, and
    // 1 to 4 bands of output rows (so band edges are exercised on tiny inputs).
    let levels = Isa::available();
    let isa = levels[bytes.below(levels.len())];
    let tasks = bytes.between(1, 4);
    let input: Vec<f32> = (0..plan.input_len())
        .map(|i| {
            if bytes.is_empty() {
                ((i * 37) % 11) as f32 - 5.0
            } else {
                f32::from_bits(bytes.u32())
            }
        })
        .collect();
    let expected = Expected::of(&plan, &input).expect("valid input");
    let plan = plan
        .with_isa(isa)
        .expect("available")
        .with_forced_tasks(tasks);
    let mut out = vec![f32::from_bits(0x7fc0_dead); plan.output_len()];
    let mut idx = vec![-1i64; plan.output_len()];
    let result = if case.with_indices {
        plan.run_with_indices(&input, &mut out, &mut idx)
    } else {
        plan.run(&input, &mut out)
    };
    result.expect("valid buffers");
    let idx = case.with_indices.then_some(&idx[..]);
    if let Err(e) = expected.check(&plan, &out, idx) {
        panic!(
            "{:?} {:?} {:?} on {isa} in {tasks} bands: {e}",
            case.desc, case.layout, case.shape
        );
    }
}

/// Fuzz target `buffers`: buffers of wrong lengths (and slices at any offset) are an error
/// naming the argument, never an out-of-bounds access; exact lengths run.
pub fn fuzz_buffers(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let case = small_case(&mut bytes);
    let Ok(plan) = Plan::<f32>::new(&case.desc, case.layout, &case.shape) else {
        return;
    };
    let length = |bytes: &mut Bytes, exact: usize| match bytes.below(4) {
        0 => exact.saturating_sub(bytes.between(1, 3)),
        1 => exact + bytes.between(1, 3),
        _ => exact,
    };
    let (input_len, output_len, indices_len) = (
        length(&mut bytes, plan.input_len()),
        length(&mut bytes, plan.output_len()),
        length(&mut bytes, plan.output_len()),
    );
    // Slices at an arbitrary element offset of larger buffers.
    let offset = bytes.below(4);
    let input_storage = vec![1.5f32; input_len + offset];
    let mut output_storage = vec![0.0f32; output_len + offset];
    let mut indices_storage = vec![0i64; indices_len + offset];
    let input = &input_storage[offset..];
    let output = &mut output_storage[offset..];
    let indices = &mut indices_storage[offset..];
    let result = if case.with_indices {
        plan.run_with_indices(input, output, indices)
    } else {
        plan.run(input, output)
    };
    let expected = if input_len != plan.input_len() {
        Err("input")
    } else if output_len != plan.output_len() {
        Err("output")
    } else if case.with_indices && indices_len != plan.output_len() {
        Err("indices")
    } else {
        Ok(())
    };
    match (result, expected) {
        (Ok(()), Ok(())) => {}
        (Err(PoolError::BufferLength { argument, .. }), Err(wanted)) => {
            assert_eq!(argument, wanted)
        }
        (got, wanted) => panic!("got {got:?}, expected {wanted:?}"),
    }
}
