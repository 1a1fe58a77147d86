//! Codegen probe: does LLVM form the int16 dot-product instructions (`vpmaddwd`, AVX-512 VNNI
//! `vpdpwssd`) from a safe Rust loop over pairs of int16 weights and activations? Two
//! shapes of the matrix-vector loop a quantized GRU step would need (256 outputs, pairs of
//! input rows interleaved), compiled with `avx512f,avx512bw,avx512vnni` enabled. Not part of
//! the workspace (it has its own `unsafe` dispatch):
//!
//!     rustc -O benches/reference/i16_pairs_codegen.rs -o /tmp/i16_pairs
//!     objdump -d /tmp/i16_pairs | grep -cE 'vpmaddwd|vpdpwssd'   # 0 with rustc 1.95
//!     objdump -d /tmp/i16_pairs | grep -c vpmulld                # 32-bit multiplies instead
//!
//! With rustc 1.95 (2026-04) neither shape gives `vpmaddwd` or `vpdpwssd` (docs/BENCHMARKS.md,
//! the GRU policy's batch-256 target): a reduced-precision kernel needs intrinsics.

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline(never)]
pub fn gemv_i16(w: &[i16], pairs: &[[i16; 2]], acc: &mut [i32; 256]) {
    for (wrow, p) in w.chunks_exact(512).zip(pairs) {
        let (a0, a1) = (p[0] as i32, p[1] as i32);
        for (a, ww) in acc.iter_mut().zip(wrow.chunks_exact(2)) {
            *a += ww[0] as i32 * a0 + ww[1] as i32 * a1;
        }
    }
}
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline(never)]
pub fn gemv_i16b(w: &[i16], pairs: &[i16], acc: &mut [i32; 256]) {
    // pairs: per k-pair a block of 512 i16 = [a0, a1] repeated.
    for (wrow, p) in w.chunks_exact(512).zip(pairs.chunks_exact(512)) {
        for j in 0..256 {
            acc[j] += wrow[2 * j] as i32 * p[2 * j] as i32
                + wrow[2 * j + 1] as i32 * p[2 * j + 1] as i32;
        }
    }
}
fn main() {
    let w = vec![1i16; 512 * 128];
    let p = vec![[2i16, 3]; 128];
    let pb = vec![2i16; 512 * 128];
    let mut acc = [0i32; 256];
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vnni")
    {
        // SAFETY: the CPU has every feature the two functions enable, checked above.
        unsafe { gemv_i16(&w, &p, &mut acc) };
        unsafe { gemv_i16b(&w, &pb, &mut acc) };
    }
    println!("{}", acc[7]);
}
