//! The one matrix product of the forward pass, `C = A·B` (or `C += A·B`), for a weight matrix
//! `B` packed once at load time into panels of [`NR`] columns, each panel `K` rows of `NR`
//! contiguous floats. The kernel keeps an `MR × NR` block of `C` in registers while it walks
//! `K`, so each loaded weight is used `MR` times and `C` is written once; plain arrays and
//! fixed trip counts let the compiler vectorise it (no `unsafe`, no intrinsics).

/// Columns per panel: one block row of the kernel.
pub(crate) const NR: usize = 8;
/// Rows of `A` (and `C`) per kernel call.
const MR: usize = 4;

/// A `k × n` weight matrix packed into column panels.
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    k: usize,
    n: usize,
    /// `ceil(n / NR)` panels of `k × NR` floats; columns past `n` are zero.
    data: Vec<f32>,
}

impl Packed {
    /// Packs a row-major `k × n` matrix.
    pub(crate) fn new(rows: &[f32], k: usize, n: usize) -> Packed {
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0; panels * k * NR];
        for (p, panel) in data.chunks_exact_mut(k * NR).enumerate() {
            let j0 = p * NR;
            let width = NR.min(n - j0);
            for (row, dst) in panel.chunks_exact_mut(NR).enumerate() {
                dst[..width].copy_from_slice(&rows[row * n + j0..row * n + j0 + width]);
            }
        }
        Packed { k, n, data }
    }

    /// Rows (the inner dimension of the product).
    #[cfg(test)]
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Columns.
    #[cfg(test)]
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// The bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.data.len() * 4
    }
}

/// `C[i, ..n] (+)= A[i, ..k] · B` for the `m` rows `i`; row `i` of `A` starts at `i * lda`,
/// of `C` at `i * ldc`.
pub(crate) fn matmul(
    a: &[f32],
    lda: usize,
    m: usize,
    b: &Packed,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    let k = b.k;
    for (p, panel) in b.data.chunks_exact(k * NR).enumerate() {
        let j0 = p * NR;
        let width = NR.min(b.n - j0);
        let mut i = 0;
        while i + MR <= m {
            let rows: [&[f32]; MR] = std::array::from_fn(|r| &a[(i + r) * lda..(i + r) * lda + k]);
            let acc = kernel(rows, panel);
            store(&acc, c, i, ldc, j0, width, accumulate);
            i += MR;
        }
        while i < m {
            let acc = kernel([&a[i * lda..i * lda + k]], panel);
            store(&acc, c, i, ldc, j0, width, accumulate);
            i += 1;
        }
    }
}

/// `R` rows of `A` times one panel: an `R × NR` block.
#[inline(always)]
fn kernel<const R: usize>(rows: [&[f32]; R], panel: &[f32]) -> [[f32; NR]; R] {
    let mut acc = [[0.0f32; NR]; R];
    for (kk, b) in panel.chunks_exact(NR).enumerate() {
        let b: &[f32; NR] = match b.try_into() {
            Ok(b) => b,
            Err(_) => continue,
        };
        for r in 0..R {
            let x = rows[r][kk];
            for (acc, &b) in acc[r].iter_mut().zip(b) {
                *acc += x * b;
            }
        }
    }
    acc
}

fn store<const R: usize>(
    acc: &[[f32; NR]; R],
    c: &mut [f32],
    i: usize,
    ldc: usize,
    j0: usize,
    width: usize,
    accumulate: bool,
) {
    for (r, row) in acc.iter().enumerate() {
        let dst = &mut c[(i + r) * ldc + j0..(i + r) * ldc + j0 + width];
        if accumulate {
            for (d, &v) in dst.iter_mut().zip(row) {
                *d += v;
            }
        } else {
            dst.copy_from_slice(&row[..width]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], m: usize, k: usize, b: &[f32], n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn equals_the_naive_product_for_ragged_shapes() {
        let mut seed = 1u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        for (m, k, n) in [(1, 1, 1), (3, 5, 7), (4, 8, 8), (9, 17, 19), (13, 32, 40)] {
            let a: Vec<f32> = (0..m * k).map(|_| rnd()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rnd()).collect();
            let want = naive(&a, m, k, &b, n);
            let packed = Packed::new(&b, k, n);
            let mut c = vec![0.0; m * n];
            matmul(&a, k, m, &packed, &mut c, n, false);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-5, "{m}x{k}x{n}: {x} vs {y}");
            }
            matmul(&a, k, m, &packed, &mut c, n, true);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - 2.0 * y).abs() < 1e-5);
            }
        }
    }
}
