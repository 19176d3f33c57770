// fpgac kernel library: helpers shared by every kernel.
//
// Hand-written for fpgac. Each kernel computes exactly what fpgac's golden model computes
// (fpgac.sim.reference; the op reference in fpgac/ir/ops.py), with the ap_fixed types fpgac chose
// for every tensor: a cast is the golden model's requantization, a sum or product is exact, and
// lookup tables are the ones fpgac computed, indexed by fpgac's rule.
//
// Constants (weights, biases, tables) are stored as ROMs of integer mantissas (the bits of their
// fixed-point type) and turned into ap_fixed values with from_mantissa(): the same bits, with
// no floating-point parsing, and a C-simulation that compiles in seconds.
#ifndef FPGAC_COMMON_H_
#define FPGAC_COMMON_H_

#include <stdint.h>

#include "ap_fixed.h"
#include "ap_int.h"
#include "hls_stream.h"

// A sparse weight matrix's three ROMs (values, input and output indices) as constants of the
// function they are passed to: FUNCTION_INSTANTIATE gives each call its own instance, so that in
// the latency form the index lookups fold away and every product is a constant multiplication
// (the same pragma hls4ml uses). _Pragma inside a macro, as UG1399 shows; g++ ignores it.
#define FPGAC_PRAGMA_(text) _Pragma(#text)
#define FPGAC_CONSTANT_ARG(v) FPGAC_PRAGMA_(HLS FUNCTION_INSTANTIATE variable=v)
#define FPGAC_CONSTANT_SPARSE(w, wi, wo) FPGAC_CONSTANT_ARG(w) FPGAC_CONSTANT_ARG(wi) FPGAC_CONSTANT_ARG(wo)

namespace fpgac {

// One word of a stream: the values of all channels at one position of a [C, *spatial] tensor.
template <class T, unsigned N> struct word {
    T data[N];
    T &operator[](unsigned i) { return data[i]; }
    const T &operator[](unsigned i) const { return data[i]; }
};

// ap_fixed or ap_ufixed with the default modes (TRN, WRAP), from a signedness flag.
template <int W, int I, bool S> struct fixed_of;
template <int W, int I> struct fixed_of<W, I, true> { typedef ap_fixed<W, I> type; };
template <int W, int I> struct fixed_of<W, I, false> { typedef ap_ufixed<W, I> type; };

// The mantissa of a fixed-point value: its bits as an integer (signed for ap_fixed).
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
ap_int_base<W, S> mantissa(const ap_fixed_base<W, I, S, Q, O, N> &x) {
#pragma HLS INLINE
    ap_int_base<W, false> bits = x.range(W - 1, 0);
    return ap_int_base<W, S>(bits);
}

// The value of type T whose mantissa is m (m fits in T's width).
template <class T, int W, bool S> T from_mantissa(const ap_int_base<W, S> &m) {
#pragma HLS INLINE
    T y = 0;
    y.range(T::width - 1, 0) = ap_int_base<T::width, false>(m);
    return y;
}

// The same, from a ROM of native integers.
template <class T> T from_mantissa(long long m) {
#pragma HLS INLINE
    T y = 0;
    y.range(T::width - 1, 0) = m;
    return y;
}

// The smallest value of x's type (what max pooling pads with).
template <int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N> void set_lowest(ap_fixed_base<W, I, S, Q, O, N> &x) {
#pragma HLS INLINE
    x.range(W - 1, 0) = S ? -(1LL << (W - 1)) : 0LL;
}

// DST(x): x rounded and saturated (or wrapped) with DST's modes, exactly as fpgac's golden model
// requantizes (fpgac.ir.requantize). When the cast drops more bits than x is wide, ap_fixed reads
// a bit beyond x (an assertion in debug builds, e.g. Vitis C-simulation); x is first widened
// exactly (sign-extended), which changes nothing else.
template <class DST, int W, int I, bool S, ap_q_mode Q, ap_o_mode O, int N>
DST requantize(const ap_fixed_base<W, I, S, Q, O, N> &x) {
#pragma HLS INLINE
    enum { DROP = (W - I) - (DST::width - DST::iwidth), EXTRA = DROP > W ? DROP - W : 0 };
    typename fixed_of<W + EXTRA, I + EXTRA, S>::type wide = x;
    return DST(wide);
}

// A lookup table (fpgac.ir.tables.Table), on mantissas. TABLE gives size, shift, offset and
// start (offset << shift), interpolate, out_width and value_t (the ROM's integer type):
//   plain:        index = clip((m >> shift) - offset, 0, size - 1);  y = values[index]
//   interpolated: a = clip(m - start, 0, (size - 1) << shift);  i = a >> shift;  r = a - (i << shift)
//                 y = values[i] + (((values[min(i + 1, size - 1)] - values[i]) * r) >> shift)
// The result is the mantissa of the table's output type.
template <class TABLE, int W, bool S>
ap_int<TABLE::out_width + 1> lookup(const ap_int_base<W, S> &m, const typename TABLE::value_t values[TABLE::size]) {
#pragma HLS INLINE
    typedef ap_int<W + 4> index_t;
    if (!TABLE::interpolate) {
        index_t i = (index_t(m) >> TABLE::shift) - index_t((long long)TABLE::offset);
        if (i < 0) i = 0;
        if (i > (long long)(TABLE::size - 1)) i = TABLE::size - 1;
        return ap_int<TABLE::out_width + 1>(values[i.to_uint()]);
    }
    index_t a = index_t(m) - index_t((long long)TABLE::start);
    if (a < 0) a = 0;
    if (a > ((long long)(TABLE::size - 1) << TABLE::shift)) a = (long long)(TABLE::size - 1) << TABLE::shift;
    index_t i = a >> TABLE::shift;
    index_t r = a - (i << TABLE::shift);
    unsigned k = i.to_uint();
    unsigned k1 = k + 1 < TABLE::size ? k + 1 : TABLE::size - 1;
    ap_int<TABLE::out_width + 2> here = values[k];
    ap_int<TABLE::out_width + 2> there = values[k1];
    ap_int<TABLE::out_width + TABLE::shift + 3> step = (there - here) * r;
    return ap_int<TABLE::out_width + 1>(here + (step >> TABLE::shift));
}

// A table applied to a value: the output value of type res_T.
template <class TABLE, class res_T, class data_T>
res_T lookup_value(const data_T &x, const typename TABLE::value_t values[TABLE::size]) {
#pragma HLS INLINE
    return from_mantissa<res_T>(lookup<TABLE>(mantissa(x), values));
}

} // namespace fpgac

#endif
