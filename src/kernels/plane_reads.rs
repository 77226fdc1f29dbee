//! Where the flat-plane kernels that read the input in place ([`super::flat_unpadded`],
//! [`super::separable_unpadded`]) read each plane from.

/// A plane's taps reach `front` elements before it and `back` after it: planes that close to
/// the input's ends (its first and last) are read from a copy with the rule's padding value
/// around, the others in place.
#[derive(Clone, Copy)]
pub(crate) struct PlaneReads {
    plane: usize,
    front: usize,
    back: usize,
    input_len: usize,
}

impl PlaneReads {
    pub fn new(plane: usize, front: usize, back: usize, input_len: usize) -> Self {
        Self {
            plane,
            front,
            back,
            input_len,
        }
    }

    /// Whether plane `p` is read in place.
    pub fn in_place(self, p: usize) -> bool {
        p * self.plane >= self.front && (p + 1) * self.plane + self.back <= self.input_len
    }

    /// Elements of the copy a task over planes `first..=last` needs: none if both are read in
    /// place (planes hold more than `front` and `back` elements, so the ones between are).
    pub fn staging_len(self, first: usize, last: usize) -> usize {
        if self.in_place(first) && self.in_place(last) {
            0
        } else {
            self.front + self.plane + self.back
        }
    }

    /// Plane `p` of `input` as (slice, position of the plane's first element in it): `input`
    /// itself, or `staging` (of [`PlaneReads::staging_len`] elements) holding the plane with
    /// `fill` around it.
    pub fn plane<'a>(
        self,
        p: usize,
        input: &'a [f32],
        staging: &'a mut [f32],
        fill: f32,
    ) -> (&'a [f32], usize) {
        let base = p * self.plane;
        if self.in_place(p) {
            (input, base)
        } else {
            staging.fill(fill);
            staging[self.front..][..self.plane].copy_from_slice(&input[base..][..self.plane]);
            (staging, self.front)
        }
    }
}
