//! One core's float32 fused multiply-add throughput, the ceiling for the dense products of
//! docs/BENCHMARKS.md (the GRU policy at batch 256 is ≈ 250k multiply-adds per decision).
//!
//! Twelve independent 16-wide accumulators (192 floats, twelve AVX-512 registers), each
//! updated by `mul_add` in a loop: no loads or stores in the loop, enough independent chains to
//! cover the FMA latency. Not part of the workspace (it needs `-C target-cpu=native`):
//!
//!     rustc -O -C target-cpu=native benches/reference/fma_peak.rs -o /tmp/fma_peak && /tmp/fma_peak
//!
//! Prints the best of five runs in fused multiply-adds per second (one thread). Check the
//! loop with `objdump -d /tmp/fma_peak | grep vfmadd`: 12 `vfmadd...ps` on `zmm` registers.

use std::time::Instant;

#[inline(never)]
fn run(iters: u64, x: &mut [[f32; 16]; 12], a: f32, b: f32) {
    let mut l = *x;
    for _ in 0..iters {
        for v in l.as_flattened_mut() {
            *v = v.mul_add(a, b);
        }
    }
    *x = l;
}

fn main() {
    let mut x = [[1.0f32; 16]; 12];
    let iters = 200_000_000u64 / 12;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        run(iters, &mut x, 0.999_999, 1e-7);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let fmas = iters as f64 * 12.0 * 16.0;
    println!(
        "{:.1} G float32 FMA/s (one thread; checksum {})",
        fmas / best / 1e9,
        x[3][5]
    );
}
