//! Run-time dispatch to the CPU's widest vector unit.
//!
//! The workspace builds for the x86-64 baseline (SSE2), so loops that would vectorize eight or
//! sixteen wide on the machines quantrl runs on compile two or four wide. [`multiversion!`]
//! compiles a function for AVX-512, AVX2 and the baseline and picks one at run time; the host
//! networks of `quantrl-nets` and the trading engine of `quantrl-envs` use it.

/// Define a function compiled three times: for the portable baseline (SSE2 on x86-64, 4
/// lanes), for AVX2 with FMA (8 lanes) and for AVX-512 with FMA (16 lanes); calls pick the
/// widest the CPU has, detected at run time (the detection is cached by the standard library).
///
/// Two forms:
/// - `fn name(args) { body }`: the same body in every version. The results are bit-identical
///   across the three: Rust never fuses a multiply and an add on its own, so every version
///   performs the same IEEE operations in the same order. Helpers the body calls must be
///   `#[inline(always)]` to be compiled into each version.
/// - `fn name(args) => body { avx512: [G], avx2: [G], portable: [G] }`: calls the generic
///   function `body::<G>(args)` with each version's own generic arguments (tile sizes, whether
///   to use `mul_add`), as the matrix kernels of `quantrl-nets` do.
///
/// ```
/// quantrl_core::multiversion! {
///     /// `y += a x`, as wide as the CPU allows.
///     pub fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
///         for (y, x) in y.iter_mut().zip(x) {
///             *y += a * x;
///         }
///     }
/// }
/// let mut y = [1.0; 20];
/// axpy(2.0, &[0.5; 20], &mut y);
/// assert_eq!(y, [2.0; 20]);
/// ```
#[macro_export]
macro_rules! multiversion {
    (
        $(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $body:ident
        { avx512: [$($w:tt)*], avx2: [$($v:tt)*], portable: [$($p:tt)*] }
    ) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,fma")]
                #[allow(clippy::too_many_arguments)]
                fn wide16($($arg: $ty),*) {
                    $body::<$($w)*>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn wide8($($arg: $ty),*) {
                    $body::<$($v)*>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F (and so FMA), checked on the line above.
                    #[allow(unsafe_code)]
                    unsafe {
                        wide16($($arg),*)
                    };
                    return;
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX2 and FMA, checked on the line above.
                    #[allow(unsafe_code)]
                    unsafe {
                        wide8($($arg),*)
                    };
                    return;
                }
            }
            $body::<$($p)*>($($arg),*)
        }
    };
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            $crate::multiversion! {
                fn dispatch($($arg: $ty),*) => body { avx512: [], avx2: [], portable: [] }
            }
            dispatch($($arg),*)
        }
    };
}
