// fpgac kernel library: ops that move values (copy, concat, gather for transpose/slice/pad) and
// argmax. Moving costs no logic in hardware: with constant indices it is wiring.
#ifndef FPGAC_SHAPE_H_
#define FPGAC_SHAPE_H_

#include "common.h"

namespace fpgac {

// Part k of a concatenation along an axis: x is [outer, n_part, inner], y is [outer, n_total,
// inner], x lands at offset along the axis.
template <class data_T, class res_T, unsigned OUTER, unsigned N_PART, unsigned OFFSET, unsigned N_TOTAL, unsigned INNER>
void concat_part(const data_T x[OUTER * N_PART * INNER], res_T y[OUTER * N_TOTAL * INNER]) {
    for (unsigned o = 0; o < OUTER; o++) {
        for (unsigned k = 0; k < N_PART; k++) {
            for (unsigned i = 0; i < INNER; i++) {
#pragma HLS UNROLL
                y[(o * N_TOTAL + OFFSET + k) * INNER + i] = x[(o * N_PART + k) * INNER + i];
            }
        }
    }
}

// y[i] = x[index[i]], or the constant with mantissa PAD where index[i] < 0 (padding).
template <class data_T, class res_T, unsigned N, long long PAD, class index_T>
void gather(const data_T *x, res_T y[N], const index_T index[N]) {
    for (unsigned i = 0; i < N; i++) {
#pragma HLS UNROLL
        y[i] = index[i] < 0 ? from_mantissa<res_T>(PAD) : res_T(x[index[i]]);
    }
}

// The index of the largest element along an axis of [outer, n, inner] (ties: the first, or the
// last when LAST), as an unsigned integer of res_T.
template <class data_T, class res_T, unsigned OUTER, unsigned N, unsigned INNER, bool LAST>
void argmax(const data_T x[OUTER * N * INNER], res_T y[OUTER * INNER]) {
    for (unsigned o = 0; o < OUTER; o++) {
        for (unsigned i = 0; i < INNER; i++) {
            data_T best = x[o * N * INNER + i];
            unsigned where = 0;
            for (unsigned k = 1; k < N; k++) {
                data_T v = x[(o * N + k) * INNER + i];
                if (v > best || (LAST && v == best)) {
                    best = v;
                    where = k;
                }
            }
            y[o * INNER + i] = where;
        }
    }
}

} // namespace fpgac

#endif
