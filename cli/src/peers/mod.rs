//! The peer libraries of the comparison report (candle, burn, tract), behind the `peers` feature.
//!
//! Each peer gets a case as a [`Spec`] (2-D pooling as the suite describes it) and the input, and
//! prepares a call: the input tensor is built beforehand (a user already holds one), the timed
//! call runs the peer's pooling op and lets it allocate its output as its API requires, and the
//! output is read back only for the check against the reference, outside the timing.

use nnpool::{Layout, Plan, PoolOp};

#[cfg(feature = "peers")]
mod burn;
#[cfg(feature = "peers")]
mod candle;
#[cfg(feature = "peers")]
mod tract;

/// A 2-D pooling case in the terms peers take.
#[derive(Clone, Debug)]
#[cfg_attr(not(feature = "peers"), allow(dead_code))]
pub struct Spec {
    pub layout: Layout,
    /// `[n, c, h, w]`, whatever the layout.
    pub shape: [usize; 4],
    pub op: PoolOp,
    /// The window is the whole plane (global pooling).
    pub global: bool,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub pad_begin: [usize; 2],
    pub pad_end: [usize; 2],
    pub count_include_pad: bool,
}

#[cfg_attr(not(feature = "peers"), allow(dead_code))]
impl Spec {
    /// The spec of a plan, or why peers cannot take it (they are asked for 2-D max and average
    /// without dilation, ceil mode or divisor override; the suite has nothing else).
    pub fn of(plan: &Plan<f32>) -> Result<Spec, String> {
        let shape: [usize; 4] = plan
            .input_shape()
            .try_into()
            .map_err(|_| "not 2-D".to_string())?;
        if !matches!(plan.op(), PoolOp::Max | PoolOp::Average) {
            return Err("only max and average are compared".into());
        }
        if plan.divisor_override().is_some() {
            return Err("divisor override".into());
        }
        let two = |v: Vec<usize>| -> [usize; 2] { [v[0], v[1]] };
        let spec = Spec {
            layout: plan.layout(),
            shape,
            op: plan.op(),
            global: plan.is_global(),
            kernel: two(plan.kernel()),
            stride: two(plan.strides()),
            pad_begin: two(plan.pads_begin()),
            pad_end: two(plan.pads_end()),
            count_include_pad: plan.count_include_pad(),
        };
        if plan.dilations().iter().any(|&d| d != 1) {
            return Err("dilation".into());
        }
        // Peers size outputs by the floor formula; a plan whose output differs is in ceil mode.
        let floor = |axis: usize| {
            (shape[2 + axis] + spec.pad_begin[axis] + spec.pad_end[axis] - spec.kernel[axis])
                / spec.stride[axis]
                + 1
        };
        if plan.output_shape()[2..] != [floor(0), floor(1)] {
            return Err("ceil mode".into());
        }
        Ok(spec)
    }

    pub fn padded(&self) -> bool {
        self.pad_begin.iter().chain(&self.pad_end).any(|&p| p > 0)
    }

    /// The input's dimensions in memory order.
    pub fn memory_shape(&self) -> [usize; 4] {
        let [n, c, h, w] = self.shape;
        match self.layout {
            Layout::ChannelsFirst => [n, c, h, w],
            Layout::ChannelsLast => [n, h, w, c],
        }
    }
}

/// A prepared peer call.
pub trait Prepared: Send {
    /// The timed call: the pooling op, output allocation included.
    fn call(&mut self) -> Result<(), String>;
    /// The last call's output in the case's layout, for the check (not timed).
    fn output(&mut self) -> Result<Vec<f32>, String>;
}

/// Prepares a peer's call for a case and its input, or says why the peer cannot express it.
pub type Prepare = fn(&Spec, &[f32]) -> Result<Box<dyn Prepared>, String>;

/// A peer library.
pub struct Peer {
    pub name: &'static str,
    /// Prepares a call, or says why the peer cannot express the case ("n/a: ...").
    pub prepare: Prepare,
}

/// The peers built into this binary: none without the `peers` feature.
pub fn all() -> Vec<Peer> {
    #[cfg(feature = "peers")]
    {
        vec![
            Peer {
                name: "candle",
                prepare: candle::prepare,
            },
            Peer {
                name: "burn",
                prepare: burn::prepare,
            },
            Peer {
                name: "tract",
                prepare: tract::prepare,
            },
        ]
    }
    #[cfg(not(feature = "peers"))]
    {
        Vec::new()
    }
}

/// The peers' crate versions, for the header.
pub fn versions() -> &'static str {
    env!("NNPOOL_PEER_VERSIONS")
}

/// Whether a peer's output matches the reference: max exactly, average within a rounding
/// tolerance (peers sum in their own order).
pub fn matches_reference(op: PoolOp, ours: &[f32], reference: &[f32]) -> Result<(), String> {
    if ours.len() != reference.len() {
        return Err(format!(
            "{} outputs, the reference has {}",
            ours.len(),
            reference.len()
        ));
    }
    let close = |a: f32, b: f32| match op {
        PoolOp::Max => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
        _ => (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
    };
    match (0..ours.len()).find(|&i| !close(ours[i], reference[i])) {
        None => Ok(()),
        Some(i) => Err(format!(
            "output[{i}] = {}, reference {}",
            ours[i], reference[i]
        )),
    }
}
