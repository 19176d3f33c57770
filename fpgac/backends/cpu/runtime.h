/* fpgac CPU runtime: the few arithmetic helpers every generated kernel uses.
 *
 * This text is copied verbatim to the top of every generated model.c (so that a model is one
 * header and one source). It is hand-written; only the code after it depends on the model.
 *
 * Portability: only C99 and <stdint.h>. The exact-width types int8_t..int64_t are two's
 * complement by definition, so masking them is well defined. What C99 leaves open is avoided:
 *  - a right shift of a negative number is implementation-defined: fx_sra* floors portably
 *    (x >= 0 ? x >> s : ~(~x >> s)); compilers turn it into one arithmetic shift;
 *  - a left shift of a negative number is undefined: fx_shl* multiplies by a power of two;
 *  - a narrowing conversion to a signed type is implementation-defined when the value does not
 *    fit: fx_wrap* sign-extends from the bit pattern with masks instead;
 *  - signed overflow is undefined: the generator picks every accumulator wide enough for the
 *    exact bound of its sum, so none can overflow.
 */

#include <stdint.h>

/* floor(x / 2^s), 0 <= s < width of the type */
static inline int32_t fx_sra32(int32_t x, int s) { return x >= 0 ? x >> s : ~(~x >> s); }
static inline int64_t fx_sra64(int64_t x, int s) { return x >= 0 ? x >> s : ~(~x >> s); }

/* x * 2^s, exact (the generator proves the product fits) */
static inline int32_t fx_shl32(int32_t x, int s) { return x * ((int32_t)1 << s); }
static inline int64_t fx_shl64(int64_t x, int s) { return x * ((int64_t)1 << s); }

/* the two's complement value of the low `width` bits of u (1 <= width <= 63) */
static inline int64_t fx_wrap_signed(uint64_t u, int width)
{
    uint64_t sign = (uint64_t)1 << (width - 1);
    return (int64_t)(u & (sign - 1u)) - (int64_t)(u & sign);
}

/* the unsigned value of the low `width` bits of u (1 <= width <= 63) */
static inline int64_t fx_wrap_unsigned(uint64_t u, int width)
{
    return (int64_t)(u & (((uint64_t)1 << width) - 1u));
}

#ifndef MODEL_NO_FLOAT
/* -- the float convenience entry only (not the hot path) ---------------------------------- */
#include <math.h>

enum fx_rounding { FX_TRN, FX_TRN_ZERO, FX_RND, FX_RND_ZERO, FX_RND_INF, FX_RND_MIN_INF, FX_RND_CONV };
enum fx_overflow { FX_WRAP, FX_SAT, FX_SAT_ZERO, FX_SAT_SYM };

/* A fixed-point type: ap_fixed<width, width - frac_bits, rounding, overflow> (ap_ufixed if !is_signed). */
typedef struct {
    int width, frac_bits, is_signed, rounding, overflow;
} fx_type;

/* The mantissa of t holding man * 2^k (|man| < 2^62), rounded and overflowed as ap_fixed does:
 * the same steps as fpgac.ir.fixed._convert. */
static int64_t fx_convert(int64_t man, int k, fx_type t)
{
    int64_t hi = t.is_signed ? (int64_t)(((uint64_t)1 << (t.width - 1)) - 1u) : (int64_t)(((uint64_t)1 << t.width) - 1u);
    int64_t lo = t.is_signed ? -hi - 1 : 0;
    int above, below;
    uint64_t low;
    if (t.overflow == FX_SAT_SYM && t.is_signed && t.width > 1)
        lo = -hi;
    if (k >= 0) {
        if (k >= 64) {
            above = man > 0;
            below = man < 0;
            low = 0;
        } else {
            above = man > fx_sra64(hi, k);
            below = man <= fx_sra64(lo - 1, k);
            low = (uint64_t)man << k;
        }
    } else {
        int n = -k > 63 ? 63 : -k;
        int64_t twice = fx_sra64(man, n - 1);
        int64_t fl = fx_sra64(twice, 1);
        int qb = (int)(twice & 1);
        int r = (man & (((int64_t)1 << (n - 1)) - 1)) != 0;
        int s = man < 0;
        int inc = 0;
        int64_t rounded;
        switch (t.rounding) {
        case FX_TRN_ZERO: inc = s & (qb | r); break;
        case FX_RND: inc = qb; break;
        case FX_RND_ZERO: inc = qb & (s | r); break;
        case FX_RND_INF: inc = qb & ((s == 0) | r); break;
        case FX_RND_MIN_INF: inc = qb & r; break;
        case FX_RND_CONV: inc = qb & ((int)(fl & 1) | r); break;
        default: break; /* FX_TRN */
        }
        rounded = fl + inc;
        above = rounded > hi;
        below = rounded < lo;
        low = (uint64_t)rounded;
    }
    if (t.overflow == FX_WRAP || !(above || below))
        return t.is_signed ? fx_wrap_signed(low, t.width) : fx_wrap_unsigned(low, t.width);
    if (t.overflow == FX_SAT_ZERO)
        return 0;
    return above ? hi : lo;
}

/* The mantissa `ap_fixed<...> v = x;` holds (fpgac.ir.fixed.quantize); NaN gives 0. */
static int64_t fx_from_double(double x, fx_type t)
{
    int e;
    double f;
    if (isnan(x))
        return 0;
    if (isinf(x)) /* ap_fixed treats +-inf as +-2^1024 */
        return fx_convert(x > 0 ? 1 : -1, 2000, t);
    f = frexp(x, &e);
    return fx_convert((int64_t)ldexp(f, 53), e - 53 + t.frac_bits, t);
}

static double fx_to_double(int64_t m, int frac_bits) { return ldexp((double)m, -frac_bits); }
#endif /* MODEL_NO_FLOAT */
