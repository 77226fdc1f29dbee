//! The instruction-set levels the kernels are compiled for, detected once at run time.
//!
//! Each kernel is written once, generic over pulp's `Simd` trait, and instantiated per level
//! here. A level's token exists only after pulp has detected the CPU feature, so code that holds
//! one needs no further checks. `NNPOOL_ISA=scalar|v2|v3|v4|neon` sets the default level for
//! every plan of the process (tests and benchmarks use it to run each path on one machine).

use std::sync::OnceLock;

use pulp::{Simd, WithSimd};

/// An instruction-set level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Isa {
    /// Portable: 4-lane arrays that the compiler vectorizes for whatever the build targets
    /// (SSE2 on a default x86-64 build). Runs everywhere; named `scalar` in `NNPOOL_ISA`.
    Portable,
    /// x86-64-v2 (SSE4.2), 4 lanes.
    V2,
    /// x86-64-v3 (AVX2 + FMA), 8 lanes.
    V3,
    /// x86-64-v4 (AVX-512 F/BW/CD/DQ/VL), 16 lanes.
    V4,
    /// aarch64 NEON, 4 lanes.
    Neon,
}

impl Isa {
    /// Every level, slowest first.
    pub const ALL: [Isa; 5] = [Isa::Portable, Isa::V2, Isa::V3, Isa::V4, Isa::Neon];

    /// The name used by `NNPOOL_ISA` and in kernel names.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "scalar",
            Isa::V2 => "v2",
            Isa::V3 => "v3",
            Isa::V4 => "v4",
            Isa::Neon => "neon",
        }
    }

    /// Parses a name as [`Isa::name`] gives it.
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name.trim())
    }

    /// Whether this CPU runs the level.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Isa::V2 => pulp::x86::V2::try_new().is_some(),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Isa::V3 => pulp::x86::V3::try_new().is_some(),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            Isa::V4 => pulp::x86::V4::try_new().is_some(),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => pulp::aarch64::Neon::try_new().is_some(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The levels this CPU runs, slowest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|isa| isa.is_available())
            .collect()
    }

    /// The fastest level this CPU runs.
    pub fn best() -> Isa {
        Isa::available().into_iter().max().unwrap_or(Isa::Portable)
    }

    /// The level plans use on this CPU when nothing forces one: [`Isa::best`]. On AMD Zen 4 and
    /// Zen 5 plans left to this default run some channels-first kernels on v3 instead (see
    /// [`Isa::v3_moves`]). (Until session 61 plans defaulted to v3 on Zen 4, whose AVX-512
    /// units are 256 bits wide; since then the 16-lane kernels there ran the channels-last
    /// cases 0.64-1.05x as long as v3, `inception` NCHW 0.53x: `docs/speed-history.md`.)
    pub fn preferred() -> Isa {
        Isa::best()
    }

    /// Which v4 kernels plans that take the process default ([`Isa::default_for_process`], not
    /// forced by `NNPOOL_ISA` or [`crate::Plan::with_isa`]) leave for v3's choice, measured per
    /// CPU (`nnpool bench --isa v3|v4 --threads 1`, alternated rounds):
    ///
    /// - channels-first short-rows and separable max, where v3 chooses them too or the pairs
    ///   kernel: on AMD Zen 5 (family 1Ah) they ran 1.07x to 1.40x faster on v3 and every other
    ///   kernel as fast or faster on v4 (session 53); on AMD Zen 4 (family 19h) 1.03x to 1.41x,
    ///   2x2/2 max on 28x28 planes 2.7x (v3's pairs kernel; session 61);
    /// - on Zen 4 only, channels-first sums with x stride 2 that v3 runs in the small-planes
    ///   kernel and v4 in it too (planes past v4's narrow block), or in the fixed-window or
    ///   flat-planes kernel: 3x3/2 average ran 1.14x to 1.23x faster on v3 than in v4's small
    ///   planes (256 of 28x28 37.7 against 41.9 µs, 32 of 112x112 73 against 90, 64 of 56x56
    ///   36 against 44; session 61; not measured on Zen 5).
    pub(crate) fn v3_moves() -> V3Moves {
        static MOVES: OnceLock<V3Moves> = OnceLock::new();
        *MOVES.get_or_init(|| {
            let family = if !default_is_forced() && Isa::preferred() == Isa::V4 {
                amd_family()
            } else {
                None
            };
            V3Moves {
                channels_first_max: matches!(family, Some(ZEN_4_FAMILY | ZEN_5_FAMILY)),
                strided_sums: family == Some(ZEN_4_FAMILY),
            }
        })
    }

    /// The level plans use unless told otherwise: `NNPOOL_ISA` if it is set and names a level
    /// this CPU runs (a level it lacks gives the best one below it), else [`Isa::preferred`].
    /// Read once per process.
    pub fn default_for_process() -> Isa {
        static DEFAULT: OnceLock<Isa> = OnceLock::new();
        *DEFAULT.get_or_init(|| {
            let Some(wanted) = forced_level() else {
                return Isa::preferred();
            };
            Isa::available()
                .into_iter()
                .filter(|&isa| isa <= wanted)
                .max()
                .unwrap_or(Isa::Portable)
        })
    }

    /// Number of f32 lanes of the level's vectors.
    pub fn lanes(self) -> usize {
        match self {
            Isa::V3 => 8,
            Isa::V4 => 16,
            _ => 4,
        }
    }
}

/// The channels-first kernels that plans on the default v4 level leave for v3's choice (see
/// [`Isa::v3_moves`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct V3Moves {
    /// Short-rows and separable max, where v3 chooses one of them or the pairs kernel.
    pub channels_first_max: bool,
    /// Sums with x stride 2 on the fixed-window, flat-planes or (not narrow) small-planes
    /// kernel, where v3 chooses the small-planes one.
    pub strided_sums: bool,
}

/// The level `NNPOOL_ISA` names, if it is set to a level's name.
fn forced_level() -> Option<Isa> {
    std::env::var("NNPOOL_ISA")
        .ok()
        .and_then(|v| Isa::from_name(&v))
}

/// Whether `NNPOOL_ISA` sets the process default (read once, as the default is).
fn default_is_forced() -> bool {
    static FORCED: OnceLock<bool> = OnceLock::new();
    *FORCED.get_or_init(|| forced_level().is_some())
}

/// AMD Zen 4 (family 19h; its Zen 3 models lack AVX-512, so callers ask only once v4 is known
/// to run), whose AVX-512 units are 256 bits wide and run 512-bit operations as two halves.
const ZEN_4_FAMILY: u8 = 0x19;

/// AMD Zen 5 (family 1Ah), whose AVX-512 units are 512 bits wide.
const ZEN_5_FAMILY: u8 = 0x1A;

/// The CPU's family if it is an AMD CPU.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn amd_family() -> Option<u8> {
    let cpuid = raw_cpuid::CpuId::new();
    let is_amd = cpuid
        .get_vendor_info()
        .is_some_and(|vendor| vendor.as_str() == "AuthenticAMD");
    let family = cpuid.get_feature_info().map(|info| info.family_id());
    family.filter(|_| is_amd)
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn amd_family() -> Option<u8> {
    None
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A kernel task, run on a level through [`dispatch`].
pub(crate) trait OnLevels {
    /// Runs the task with the level's SIMD token.
    fn run_on(self, isa: Isa);
}

/// Not `#[inline]`, on purpose. rustc compiles a method of an impl in the codegen unit of the
/// impl's self type, here the task's own kernel module, and copies the `#[inline]` functions it
/// calls (this `dispatch`, pulp's `vectorize` entry points) into that unit. Called from the
/// kernel chooser as an inlined `dispatch`, every kernel of every level was optimized in the
/// chooser's one codegen unit, on one core: 10 minutes per release build of the library, more
/// than 20 for the fuzz build.
impl<Op: WithSimd<Output = ()>> OnLevels for Op {
    fn run_on(self, isa: Isa) {
        dispatch(isa, self)
    }
}

/// Runs `op` with the level's SIMD token. A level the CPU lacks (plans never hold one) runs the
/// portable path instead.
#[inline]
fn dispatch<Op: WithSimd>(isa: Isa, op: Op) -> Op::Output {
    match isa {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Isa::V4 => match pulp::x86::V4::try_new() {
            Some(simd) => Simd::vectorize(simd, op),
            None => Simd::vectorize(pulp::Scalar128b, op),
        },
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Isa::V3 => match pulp::x86::V3::try_new() {
            Some(simd) => Simd::vectorize(simd, op),
            None => Simd::vectorize(pulp::Scalar128b, op),
        },
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        Isa::V2 => match pulp::x86::V2::try_new() {
            Some(simd) => Simd::vectorize(simd, op),
            None => Simd::vectorize(pulp::Scalar128b, op),
        },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => match pulp::aarch64::Neon::try_new() {
            Some(simd) => Simd::vectorize(simd, op),
            None => Simd::vectorize(pulp::Scalar128b, op),
        },
        _ => Simd::vectorize(pulp::Scalar128b, op),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_level_is_the_best_one_this_cpu_runs() {
        let preferred = Isa::preferred();
        assert!(preferred.is_available());
        assert_eq!(preferred, Isa::best());
    }

    /// Plans left to the default level run channels-first separable max and strided sums on
    /// v3 exactly where `v3_moves` says so; other kernels keep the default, and a level given
    /// to `with_isa` always wins.
    #[test]
    fn only_the_measured_kernels_leave_the_default_level() {
        use crate::{Layout, Padding, Plan, PoolDesc};
        let default = Isa::default_for_process();
        let moves = Isa::v3_moves();
        if default != Isa::V4 {
            assert_eq!(moves, V3Moves::default());
        }
        let to_v3 = default == Isa::V4 && moves.channels_first_max;
        let separable = PoolDesc::max(&[5, 5])
            .strides(&[1, 1])
            .padding(Padding::symmetric(&[2, 2]));
        let average = PoolDesc::average(&[5, 5])
            .strides(&[1, 1])
            .padding(Padding::symmetric(&[2, 2]));
        let shape = [1, 64, 40, 40];
        let plan = |desc: &PoolDesc, layout| Plan::<f32>::new(desc, layout, &shape).unwrap();

        // (On v4 this input runs the unpadded separable kernel, which stays there; an input
        // past its bound runs the padded one, which moves.)
        let first = plan(&separable, Layout::ChannelsFirst);
        assert_eq!(first.isa(), default);
        if default == Isa::V4 {
            assert_eq!(first.kernel_name(), "separable_unpadded_max/v4");
        }
        let large = Plan::<f32>::new(&separable, Layout::ChannelsFirst, &[8, 256, 40, 40]).unwrap();
        if to_v3 {
            assert_eq!(large.isa(), Isa::V3);
            assert_eq!(large.kernel_name(), "separable_max/v3");
        } else {
            assert_eq!(large.isa(), default);
        }
        assert_eq!(plan(&separable, Layout::ChannelsLast).isa(), default);
        assert_eq!(plan(&average, Layout::ChannelsFirst).isa(), default);
        let forced = plan(&separable, Layout::ChannelsFirst)
            .with_isa(default)
            .unwrap();
        assert_eq!(forced.isa(), default);

        // Short rows on v4 stay there where v3 would choose small planes, and move to v3 where
        // it chooses the pairs kernel.
        let shape = [1, 256, 28, 28];
        let stem = PoolDesc::max(&[3, 3])
            .strides(&[2, 2])
            .padding(Padding::symmetric(&[1, 1]));
        let stem = Plan::<f32>::new(&stem, Layout::ChannelsFirst, &shape).unwrap();
        let halves = Plan::<f32>::new(&PoolDesc::max(&[2, 2]), Layout::ChannelsFirst, &shape);
        if to_v3 {
            assert_eq!(stem.kernel_name(), "channels_first_short_rows_max/v4");
            assert_eq!(halves.unwrap().kernel_name(), "channels_first_pairs_max/v3");
        }

        // 3x3/2 average: small planes on either level; channels-last plans keep the default.
        let strided = PoolDesc::average(&[3, 3])
            .strides(&[2, 2])
            .padding(Padding::symmetric(&[1, 1]));
        let sums = Plan::<f32>::new(&strided, Layout::ChannelsFirst, &shape).unwrap();
        if default == Isa::V4 && moves.strided_sums {
            assert_eq!(sums.kernel_name(), "channels_first_small_planes_average/v3");
        } else if default == Isa::V4 {
            assert_eq!(sums.kernel_name(), "channels_first_small_planes_average/v4");
        } else {
            assert_eq!(sums.isa(), default);
        }
        let last = Plan::<f32>::new(&strided, Layout::ChannelsLast, &shape).unwrap();
        assert_eq!(last.isa(), default);
    }
}
