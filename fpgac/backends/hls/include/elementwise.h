// fpgac kernel library: elementwise ops (activations, requantization, tables, binary ops, PReLU).
//
// An op is a struct with a static apply(); map() applies it to an array, map_stream() to a
// stream of words. Every op but requantize_op is exact: its result type holds the exact value
// (fpgac chose it so), so the assignment neither rounds nor saturates.
#ifndef FPGAC_ELEMENTWISE_H_
#define FPGAC_ELEMENTWISE_H_

#include "common.h"

namespace fpgac {

struct relu_op {
    template <class res_T, class data_T> static res_T apply(const data_T &x) {
#pragma HLS INLINE
        return x > 0 ? res_T(x) : res_T(0);
    }
};

struct abs_op {
    template <class res_T, class data_T> static res_T apply(const data_T &x) {
#pragma HLS INLINE
        return x < 0 ? res_T(-x) : res_T(x);
    }
};

// min(max(x, LO), HI), with LO and HI mantissas of x's type.
template <long long LO, long long HI> struct clip_op {
    template <class res_T, class data_T> static res_T apply(const data_T &x) {
#pragma HLS INLINE
        data_T lo = from_mantissa<data_T>(LO), hi = from_mantissa<data_T>(HI);
        return res_T(x < lo ? lo : (x > hi ? hi : x));
    }
};

// The explicit requantization (an IR Quant): the one place where values round and saturate.
struct requantize_op {
    template <class res_T, class data_T> static res_T apply(const data_T &x) {
#pragma HLS INLINE
        return requantize<res_T>(x);
    }
};

// The same value in another type that holds it exactly (a reshape, a copy).
struct copy_op {
    template <class res_T, class data_T> static res_T apply(const data_T &x) {
#pragma HLS INLINE
        return res_T(x);
    }
};

template <class OP, class data_T, class res_T, unsigned N> void map(const data_T x[N], res_T y[N]) {
    for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
        y[i] = OP::template apply<res_T>(x[i]);
    }
}

template <class OP, class data_T, class res_T, unsigned C, unsigned P>
void map_stream(hls::stream<word<data_T, C> > &in, hls::stream<word<res_T, C> > &out) {
    for (unsigned p = 0; p < P; p++) {
#pragma HLS PIPELINE
        word<data_T, C> v = in.read();
        word<res_T, C> r;
        for (unsigned c = 0; c < C; c++) r[c] = OP::template apply<res_T>(v[c]);
        out.write(r);
    }
}

// A table (an IR Lookup: sigmoid, tanh, ... as fpgac tabulated it), elementwise.
template <class TABLE, class data_T, class res_T, unsigned N>
void lookup_map(const data_T x[N], res_T y[N], const typename TABLE::value_t values[TABLE::size]) {
    for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
        y[i] = lookup_value<TABLE, res_T>(x[i], values);
    }
}

template <class TABLE, class data_T, class res_T, unsigned C, unsigned P>
void lookup_stream(hls::stream<word<data_T, C> > &in, hls::stream<word<res_T, C> > &out,
                   const typename TABLE::value_t values[TABLE::size]) {
    for (unsigned p = 0; p < P; p++) {
#pragma HLS PIPELINE
        word<data_T, C> v = in.read();
        word<res_T, C> r;
        for (unsigned c = 0; c < C; c++) r[c] = lookup_value<TABLE, res_T>(v[c], values);
        out.write(r);
    }
}

// Binary ops on two values of the same shape (broadcast operands are gathered first).
struct add_op {
    template <class res_T, class a_T, class b_T> static res_T apply(const a_T &a, const b_T &b) { return res_T(a + b); }
};
struct sub_op {
    template <class res_T, class a_T, class b_T> static res_T apply(const a_T &a, const b_T &b) { return res_T(a - b); }
};
struct rsub_op {  // b - a: a constant minus a run-time value
    template <class res_T, class a_T, class b_T> static res_T apply(const a_T &a, const b_T &b) { return res_T(b - a); }
};
struct mul_op {
    template <class res_T, class a_T, class b_T> static res_T apply(const a_T &a, const b_T &b) { return res_T(a * b); }
};
struct max_op {
    template <class res_T, class a_T, class b_T> static res_T apply(const a_T &a, const b_T &b) {
        return a > b ? res_T(a) : res_T(b);
    }
};
struct min_op {
    template <class res_T, class a_T, class b_T> static res_T apply(const a_T &a, const b_T &b) {
        return a < b ? res_T(a) : res_T(b);
    }
};

template <class OP, class a_T, class b_T, class res_T, unsigned N>
void binary(const a_T a[N], const b_T b[N], res_T y[N]) {
    for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
        y[i] = OP::template apply<res_T>(a[i], b[i]);
    }
}

// The same with a constant second operand (a ROM of mantissas of b_T, already broadcast).
template <class OP, class a_T, class b_T, class res_T, unsigned N, class rom_T>
void binary_const(const a_T a[N], const rom_T b[N], res_T y[N]) {
    for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
        y[i] = OP::template apply<res_T>(a[i], from_mantissa<b_T>(b[i]));
    }
}

template <class OP, class a_T, class b_T, class res_T, unsigned C, unsigned P>
void binary_stream(hls::stream<word<a_T, C> > &a, hls::stream<word<b_T, C> > &b, hls::stream<word<res_T, C> > &out) {
    for (unsigned p = 0; p < P; p++) {
#pragma HLS PIPELINE
        word<a_T, C> u = a.read();
        word<b_T, C> v = b.read();
        word<res_T, C> r;
        for (unsigned c = 0; c < C; c++) r[c] = OP::template apply<res_T>(u[c], v[c]);
        out.write(r);
    }
}

// y = x * scale + shift (an IR ScaleShift), scale and shift ROMs already broadcast.
template <class data_T, class scale_T, class shift_T, class res_T, unsigned N, class scale_rom_T, class shift_rom_T>
void scale_shift(const data_T x[N], res_T y[N], const scale_rom_T scale[N], const shift_rom_T shift[N]) {
    for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
        y[i] = x[i] * from_mantissa<scale_T>(scale[i]) + from_mantissa<shift_T>(shift[i]);
    }
}

// PReLU: x if x >= 0 else slope * x (slope a ROM already broadcast).
template <class data_T, class slope_T, class res_T, unsigned N, class rom_T>
void prelu(const data_T x[N], res_T y[N], const rom_T slope[N]) {
    for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
        y[i] = x[i] >= 0 ? res_T(x[i]) : res_T(x[i] * from_mantissa<slope_T>(slope[i]));
    }
}

} // namespace fpgac

#endif
