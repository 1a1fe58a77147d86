//! The standard normal distribution: CDF through `erfc`, and the inverse CDF.
//!
//! Both are accurate to a few ulps over the whole range, tails included, which the
//! probabilistic and deflated Sharpe ratios need (`1 - 1/N` for many trials is close to 1).

// The coefficients are written with the digits their sources publish, so that they can be
// checked against them digit by digit; the compiler rounds them to the nearest f64.
#![allow(clippy::excessive_precision)]

/// The standard normal CDF `Phi(x) = erfc(-x / sqrt(2)) / 2`.
///
/// Computed through [`erfc`] rather than `1 + erf`, so the lower tail keeps its relative
/// accuracy (`Phi(-10)` is about 7.6e-24, not 0): the relative error is a few ulps near the
/// centre and grows like `x^2` ulps in the far lower tail, from rounding `x / sqrt(2)` (as in
/// scipy's `ndtr`; about 1e-13 at `x = -37`, where `Phi` is 6e-300).
/// `Phi(-inf) = 0`, `Phi(inf) = 1`, NaN gives NaN.
///
/// ```
/// use quantrl_eval::normal_cdf;
/// assert_eq!(normal_cdf(0.0), 0.5);
/// assert!((normal_cdf(1.959963984540054) - 0.975).abs() < 1e-14);
/// ```
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// The standard normal inverse CDF (quantile function) `Phi^-1(p)`.
///
/// Wichura's algorithm AS 241 (`PPND16`, Applied Statistics 37(3), 1988): rational
/// approximations with a relative error below 1e-16 in three regions of `p`.
/// `Phi^-1(0) = -inf`, `Phi^-1(1) = inf`; NaN for `p` outside [0, 1] or NaN.
///
/// ```
/// use quantrl_eval::normal_inv_cdf;
/// assert_eq!(normal_inv_cdf(0.5), 0.0);
/// assert!((normal_inv_cdf(0.975) - 1.959963984540054).abs() < 1e-14);
/// ```
pub fn normal_inv_cdf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        let num = poly(
            r,
            &[
                3.387_132_872_796_366_608e0,
                1.331_416_678_917_843_774_5e2,
                1.971_590_950_306_551_442_7e3,
                1.373_169_376_550_946_112_5e4,
                4.592_195_393_154_987_145_7e4,
                6.726_577_092_700_870_085_3e4,
                3.343_057_558_358_812_810_5e4,
                2.509_080_928_730_122_672_7e3,
            ],
        );
        let den = poly(
            r,
            &[
                1.0,
                4.231_333_070_160_091_125_2e1,
                6.871_870_074_920_579_083e2,
                5.394_196_021_424_751_107_7e3,
                2.121_379_430_158_659_586_7e4,
                3.930_789_580_009_271_061e4,
                2.872_908_573_572_194_267_4e4,
                5.226_495_278_852_854_561e3,
            ],
        );
        return q * num / den;
    }
    // Tails: r = sqrt(-ln(min(p, 1 - p))).
    let r = (if q < 0.0 { p } else { 1.0 - p }).ln();
    let r = (-r).sqrt();
    let x = if r <= 5.0 {
        let r = r - 1.6;
        poly(
            r,
            &[
                1.423_437_110_749_683_577_34e0,
                4.630_337_846_156_545_295_9e0,
                5.769_497_221_460_691_405_5e0,
                3.647_848_324_763_204_605_04e0,
                1.270_458_252_452_368_382_58e0,
                2.417_807_251_774_506_117_7e-1,
                2.272_384_498_926_918_458_33e-2,
                7.745_450_142_783_414_076_4e-4,
            ],
        ) / poly(
            r,
            &[
                1.0,
                2.053_191_626_637_758_821_87e0,
                1.676_384_830_183_803_849_4e0,
                6.897_673_349_851_000_045_5e-1,
                1.481_039_764_274_800_745_9e-1,
                1.519_866_656_361_645_719_66e-2,
                5.475_938_084_995_344_946e-4,
                1.050_750_071_644_416_843_24e-9,
            ],
        )
    } else {
        let r = r - 5.0;
        poly(
            r,
            &[
                6.657_904_643_501_103_777_2e0,
                5.463_784_911_164_114_369_9e0,
                1.784_826_539_917_291_335_8e0,
                2.965_605_718_285_048_912_3e-1,
                2.653_218_952_657_612_309_3e-2,
                1.242_660_947_388_078_438_6e-3,
                2.711_555_568_743_487_578_15e-5,
                2.010_334_399_292_288_132_65e-7,
            ],
        ) / poly(
            r,
            &[
                1.0,
                5.998_322_065_558_879_376_9e-1,
                1.369_298_809_227_358_053_1e-1,
                1.487_536_129_085_061_485_25e-2,
                7.868_691_311_456_132_591e-4,
                1.846_318_317_510_054_681_8e-5,
                1.421_511_758_316_445_888_7e-7,
                2.044_263_103_389_939_785_64e-15,
            ],
        )
    };
    if q < 0.0 { -x } else { x }
}

/// `c[0] + c[1] x + c[2] x^2 + ...` by Horner's rule.
fn poly(x: f64, c: &[f64]) -> f64 {
    c.iter().rev().fold(0.0, |acc, &ci| acc * x + ci)
}

/// The complementary error function `erfc(x) = 1 - erf(x)`, accurate to about 1 ulp.
///
/// A transcription of FreeBSD's `s_erf.c` (fdlibm; the algorithm and the coefficients are
/// Sun Microsystems', "Permission to use, copy, modify, and distribute this software is
/// freely granted, provided that this notice is preserved": Copyright (C) 1993 by Sun
/// Microsystems, Inc. All rights reserved.), as in the `libm` crate. Rational approximations
/// on `|x| < 0.84375`, `[0.84375, 1.25)`, `[1.25, 1/0.35)` and `[1/0.35, 28)`; the last two
/// approximate `log(x erfc(x)) + x^2` so the tail keeps full relative accuracy.
pub fn erfc(x: f64) -> f64 {
    const ERX: f64 = 8.450_629_115_104_675_292_97e-1;
    const PP: [f64; 5] = [
        1.283_791_670_955_125_585_61e-1,
        -3.250_421_072_470_014_993_7e-1,
        -2.848_174_957_559_851_047_66e-2,
        -5.770_270_296_489_441_591_57e-3,
        -2.376_301_665_665_016_260_84e-5,
    ];
    const QQ: [f64; 6] = [
        1.0,
        3.979_172_239_591_553_528_19e-1,
        6.502_224_998_876_729_444_85e-2,
        5.081_306_281_875_765_627_76e-3,
        1.324_947_380_043_216_445_26e-4,
        -3.960_228_278_775_368_123_2e-6,
    ];
    const PA: [f64; 7] = [
        -2.362_118_560_752_659_440_77e-3,
        4.148_561_186_837_483_316_66e-1,
        -3.722_078_760_357_013_238_47e-1,
        3.183_466_199_011_617_536_74e-1,
        -1.108_946_942_823_966_774_76e-1,
        3.547_830_432_561_823_593_71e-2,
        -2.166_375_594_868_790_843e-3,
    ];
    const QA: [f64; 7] = [
        1.0,
        1.064_208_804_008_442_282_86e-1,
        5.403_979_177_021_710_489_37e-1,
        7.182_865_441_419_626_628_68e-2,
        1.261_712_198_087_616_421_12e-1,
        1.363_708_391_202_905_073_62e-2,
        1.198_449_984_679_910_741_7e-2,
    ];
    const RA: [f64; 8] = [
        -9.864_944_034_847_148_227_05e-3,
        -6.938_585_727_071_817_643_72e-1,
        -1.055_862_622_532_329_098_14e1,
        -6.237_533_245_032_600_603_96e1,
        -1.623_966_694_625_734_703_55e2,
        -1.846_050_929_067_110_359_94e2,
        -8.128_743_550_630_659_342_46e1,
        -9.814_329_344_169_145_485_92e0,
    ];
    const SA: [f64; 9] = [
        1.0,
        1.965_127_166_743_925_712_92e1,
        1.376_577_541_435_190_426e2,
        4.345_658_774_752_292_288_21e2,
        6.453_872_717_332_678_803_36e2,
        4.290_081_400_275_678_333_86e2,
        1.086_350_055_417_794_351_34e2,
        6.570_249_770_319_281_701_35e0,
        -6.042_441_521_485_809_874_38e-2,
    ];
    const RB: [f64; 7] = [
        -9.864_942_924_700_099_285_97e-3,
        -7.992_832_376_805_230_065_74e-1,
        -1.775_795_491_775_475_198_89e1,
        -1.606_363_848_558_219_160_62e2,
        -6.375_664_433_683_896_277_22e2,
        -1.025_095_131_611_077_249_54e3,
        -4.835_191_916_086_513_970_19e2,
    ];
    const SB: [f64; 8] = [
        1.0,
        3.033_806_074_348_245_829_24e1,
        3.257_925_129_965_739_188_26e2,
        1.536_729_586_084_436_959_94e3,
        3.199_858_219_508_595_539_08e3,
        2.553_050_406_433_164_425_83e3,
        4.745_285_412_069_553_672_15e2,
        -2.244_095_244_658_581_833_62e1,
    ];

    if x.is_nan() {
        return f64::NAN;
    }
    let ax = x.abs();
    if ax < 0.84375 {
        if ax < f64::EPSILON / 16.0 {
            return 1.0 - x;
        }
        let z = x * x;
        let y = poly(z, &PP) / poly(z, &QQ);
        return if x < 0.25 {
            1.0 - (x + x * y)
        } else {
            0.5 - (x - 0.5 + x * y)
        };
    }
    if ax >= 28.0 {
        // erfc underflows to 0 for large x and is 2 for very negative x.
        return if x > 0.0 { 0.0 } else { 2.0 };
    }
    let tail = if ax < 1.25 {
        let s = ax - 1.0;
        1.0 - ERX - poly(s, &PA) / poly(s, &QA)
    } else {
        let s = 1.0 / (ax * ax);
        // The high word of 1/0.35 in fdlibm's bit test.
        let r_over_s = if ax < f64::from_bits(0x4006_db6d_0000_0000) {
            poly(s, &RA) / poly(s, &SA)
        } else {
            poly(s, &RB) / poly(s, &SB)
        };
        // exp(-x^2) split as exp(-z^2) exp((z - x)(z + x)) with z = x truncated to 32 bits,
        // so -z^2 is exact and no accuracy is lost in the large exponent.
        let z = f64::from_bits(ax.to_bits() & 0xffff_ffff_0000_0000);
        (-z * z - 0.5625).exp() * ((z - ax) * (z + ax) + r_over_s).exp() / ax
    };
    if x > 0.0 { tail } else { 2.0 - tail }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative difference.
    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    // Reference values: mpmath at 40 digits (`erfc`, `ncdf`, and `findroot` of `ncdf` for the
    // inverse), rounded to 17 significant digits; the tails are also in Abramowitz & Stegun,
    // table 26.1 (Phi(-1.96) = 0.0249979, Phi(3) = 0.998650).
    #[test]
    fn erfc_matches_reference_values() {
        let cases = [
            (0.0, 1.0),
            (0.1, 0.8875370839817151),
            (0.5, 0.47950012218695346),
            (-0.5, 1.5204998778130465),
            (1.0, 0.15729920705028513),
            (2.0, 0.0046777349810472658),
            (3.0, 2.2090496998585441e-5),
            (5.0, 1.5374597944280349e-12),
            (10.0, 2.088487583762545e-45),
            (26.0, 5.6631924088561428e-296),
            (-3.0, 1.9999779095030014),
        ];
        for (x, want) in cases {
            assert!(
                rel(erfc(x), want) < 1e-15,
                "erfc({x}) = {:e}, want {want:e}",
                erfc(x)
            );
        }
        assert_eq!(erfc(30.0), 0.0);
        assert_eq!(erfc(f64::NEG_INFINITY), 2.0);
        assert!(erfc(f64::NAN).is_nan());
    }

    #[test]
    fn cdf_matches_reference_values() {
        let cases = [
            (0.0, 0.5),
            (1.0, 0.8413447460685429),
            (-1.0, 0.15865525393145705),
            (-1.96, 0.024997895148220435),
            (3.0, 0.9986501019683699),
            (-10.0, 7.619853024160526e-24),
            (-37.0, 5.7255712225245768e-300),
        ];
        for (x, want) in cases {
            let got = normal_cdf(x);
            // Rounding x / sqrt 2 costs about x^2 ulp in the lower tail.
            let tol = 1e-15 * (1.0 + x * x);
            assert!(rel(got, want) < tol, "Phi({x}) = {got:e}, want {want:e}");
        }
        assert_eq!(normal_cdf(f64::INFINITY), 1.0);
        assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
    }

    #[test]
    fn inverse_cdf_matches_reference_values() {
        let cases = [
            (0.975, 1.9599639845400539),
            (0.025, -1.9599639845400542),
            (0.8413447460685429, 1.0),
            (0.6, 0.25334710313579974),
            (0.99, 2.3263478740408408),
            (1e-10, -6.361340902404056),
            (1e-300, -37.0470962993612),
        ];
        for (p, want) in cases {
            let got = normal_inv_cdf(p);
            assert!(
                rel(got, want) < 1e-14,
                "Phi^-1({p}) = {got:e}, want {want:e}"
            );
        }
        assert_eq!(normal_inv_cdf(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_inv_cdf(1.0), f64::INFINITY);
        assert!(normal_inv_cdf(1.5).is_nan());
        assert!(normal_inv_cdf(-0.1).is_nan());
    }

    #[test]
    fn inverse_cdf_inverts_the_cdf() {
        // Lower half only: there Phi(x) keeps full relative precision. In the upper half it
        // rounds to within an ulp of 1, which no inverse can undo (x = 4.7 loses 5 digits).
        for i in 0..=4000 {
            let x = -37.0 + 37.0 * i as f64 / 4000.0;
            let back = normal_inv_cdf(normal_cdf(x));
            assert!(
                (back - x).abs() <= 1e-13 * x.abs().max(1.0),
                "x = {x}: got {back}"
            );
        }
        // Symmetric to the bit where 1 - p is exact.
        for k in 1..1024 {
            let p = k as f64 / 1024.0;
            assert_eq!(normal_inv_cdf(1.0 - p), -normal_inv_cdf(p), "p = {p}");
        }
    }
}
