//! Software prefetch hints (x86-64 only, off under Miri): for loops whose reads the hardware
//! prefetcher follows poorly. They change no result.

/// Prefetch requests (SSE's prefetch, checked once per task rather than per request; nothing
/// elsewhere and under Miri).
#[derive(Clone, Copy)]
pub(crate) struct Prefetcher {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    sse: Option<pulp::core_arch::x86::Sse>,
}

impl Prefetcher {
    /// A prefetcher that asks for data only when `wanted`.
    pub(crate) fn new(wanted: bool) -> Prefetcher {
        let _ = wanted;
        Prefetcher {
            #[cfg(all(target_arch = "x86_64", not(miri)))]
            sse: wanted.then(pulp::core_arch::x86::Sse::try_new).flatten(),
        }
    }

    /// Asks for the first `len` elements of `data` to be brought to L1, one request per cache
    /// line.
    #[inline(always)]
    pub(crate) fn fetch(self, data: &[f32], len: usize) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        if let Some(sse) = self.sse {
            use core::arch::x86_64::_MM_HINT_T0;
            for line in data[..len.min(data.len())].chunks(16) {
                sse._mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast());
            }
        }
        let _ = (self, data, len);
    }

    /// Asks for the first `len` elements of `data` with the L2 hint (`_MM_HINT_T1`), for
    /// requests far enough ahead that L1 would not keep them.
    #[inline(always)]
    pub(crate) fn fetch_l2(self, data: &[f32], len: usize) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        if let Some(sse) = self.sse {
            use core::arch::x86_64::_MM_HINT_T1;
            for line in data[..len.min(data.len())].chunks(16) {
                sse._mm_prefetch::<_MM_HINT_T1>(line.as_ptr().cast());
            }
        }
        let _ = (self, data, len);
    }
}
