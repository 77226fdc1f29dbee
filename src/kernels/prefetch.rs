//! Software prefetch hints (x86-64 only, off under Miri): for loops whose reads the hardware
//! prefetcher follows poorly, and for lines about to be written. They change no result.

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
        self.request::<{ core::arch::x86_64::_MM_HINT_T0 }>(data, len);
        let _ = (self, data, len);
    }

    /// [`Prefetcher::fetch`] into L2 only: for data wanted a while later, which would push
    /// data still in use out of L1.
    #[inline(always)]
    pub(crate) fn fetch_to_l2(self, data: &[f32], len: usize) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        self.request::<{ core::arch::x86_64::_MM_HINT_T1 }>(data, len);
        let _ = (self, data, len);
    }

    /// Asks for the cache line holding `data[at]` (nothing past the end) in the state for
    /// writing (`prefetchw`), so that a store to it later need not wait for the line to be
    /// read and then claimed.
    #[inline(always)]
    pub(crate) fn fetch_for_write(self, data: &[f32], at: usize) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        if let (Some(sse), Some(element)) = (self.sse, data.get(at)) {
            sse._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_ET0 }>(
                (element as *const f32).cast(),
            );
        }
        let _ = (self, data, at);
    }

    /// [`Prefetcher::fetch`] as a loop over offsets, for long runs of lines: over `chunks(16)`
    /// each request also takes the chunk's length, 8 instructions a line (a third of
    /// `global_avg` NCHW's instructions), 4 this way. The ring kernels keep `fetch`: with this
    /// loop, `train` NCHW took 30.7 million instructions a call instead of 26.6 (its loops
    /// compiled otherwise).
    #[inline(always)]
    pub(crate) fn fetch_lines(self, data: &[f32], len: usize) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        if let Some(sse) = self.sse {
            let data = &data[..len.min(data.len())];
            let mut at = 0;
            while at < data.len() {
                sse._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(data[at..].as_ptr().cast());
                at += 16;
            }
        }
        let _ = (self, data, len);
    }

    /// One request with `HINT` per cache line of `data[..len]`.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    #[inline(always)]
    fn request<const HINT: i32>(self, data: &[f32], len: usize) {
        if let Some(sse) = self.sse {
            for line in data[..len.min(data.len())].chunks(16) {
                sse._mm_prefetch::<HINT>(line.as_ptr().cast());
            }
        }
    }
}
