// fpgac kernel library: dense layers (matrix-vector products with only the non-zero weights).
//
// A layer's weights are a list of its non-zero entries: w[k] (a mantissa of weight_t), the input
// index wi[k] and the output index wo[k]. A zero weight (pruned, or rounded to zero) is not in
// the list, so it costs neither a multiplier (latency form) nor a ROM word or a cycle (resource
// form). The accumulator type accum_t holds every partial sum exactly (fpgac derives it from
// bounds on the weights and the input type), so no sum ever rounds or overflows. The layer
// functions (dense, conv_2d, lstm, gru) take their ROMs as constants (FPGAC_CONSTANT_SPARSE,
// common.h).
//
// CONFIG: n_in, n_out, n_nonzero, n_rom (= max(n_nonzero, 1)), reuse, n_rows (for a dense layer
// over the last axis of a [rows, n_in] input), typedefs accum_t, weight_t, bias_t, weight_rom_t,
// bias_rom_t, in_index_t, out_index_t.
#ifndef FPGAC_DENSE_H_
#define FPGAC_DENSE_H_

#include "common.h"

namespace fpgac {

// acc[wo[k]] += x[wi[k]] * w[k] for every non-zero weight, all at once: one multiplier a weight.
template <class CONFIG, class data_T, class acc_T>
void mac_latency(const data_T x[CONFIG::n_in], acc_T acc[CONFIG::n_out],
                 const typename CONFIG::weight_rom_t w[CONFIG::n_rom],
                 const typename CONFIG::in_index_t wi[CONFIG::n_rom],
                 const typename CONFIG::out_index_t wo[CONFIG::n_rom]) {
#pragma HLS INLINE
    for (unsigned k = 0; k < CONFIG::n_nonzero; k++) {
#pragma HLS UNROLL
        acc[wo[k]] += x[wi[k]] * from_mantissa<typename CONFIG::weight_t>(w[k]);
    }
}

// The same products over CONFIG::reuse cycles: ceil(n_nonzero / reuse) multipliers, each taking
// its next weight from its own ROM bank every cycle.
template <class CONFIG, class data_T, class acc_T>
void mac_resource(const data_T x[CONFIG::n_in], acc_T acc[CONFIG::n_out],
                  const typename CONFIG::weight_rom_t w[CONFIG::n_rom],
                  const typename CONFIG::in_index_t wi[CONFIG::n_rom],
                  const typename CONFIG::out_index_t wo[CONFIG::n_rom]) {
    const unsigned lanes = (CONFIG::n_nonzero + CONFIG::reuse - 1) / CONFIG::reuse;
#pragma HLS ARRAY_RESHAPE variable=w block factor=lanes
#pragma HLS ARRAY_RESHAPE variable=wi block factor=lanes
#pragma HLS ARRAY_RESHAPE variable=wo block factor=lanes
    for (unsigned r = 0; r < CONFIG::reuse; r++) {
#pragma HLS PIPELINE II=1
        for (unsigned l = 0; l < lanes; l++) {
#pragma HLS UNROLL
            unsigned k = l * CONFIG::reuse + r;
            if (k < CONFIG::n_nonzero) acc[wo[k]] += x[wi[k]] * from_mantissa<typename CONFIG::weight_t>(w[k]);
        }
    }
}

// The form CONFIG::reuse asks for.
template <class CONFIG, class data_T, class acc_T>
void mac(const data_T x[CONFIG::n_in], acc_T acc[CONFIG::n_out], const typename CONFIG::weight_rom_t w[CONFIG::n_rom],
         const typename CONFIG::in_index_t wi[CONFIG::n_rom], const typename CONFIG::out_index_t wo[CONFIG::n_rom]) {
#pragma HLS INLINE
    if (CONFIG::reuse <= 1)
        mac_latency<CONFIG>(x, acc, w, wi, wo);
    else
        mac_resource<CONFIG>(x, acc, w, wi, wo);
}

// y = x @ W + b over the last axis of x (n_rows rows). The result type is the exact accumulator.
template <class data_T, class res_T, class CONFIG>
void dense(const data_T x[CONFIG::n_rows * CONFIG::n_in], res_T y[CONFIG::n_rows * CONFIG::n_out],
           const typename CONFIG::weight_rom_t w[CONFIG::n_rom], const typename CONFIG::in_index_t wi[CONFIG::n_rom],
           const typename CONFIG::out_index_t wo[CONFIG::n_rom], const typename CONFIG::bias_rom_t b[CONFIG::n_out]) {
    FPGAC_CONSTANT_SPARSE(w, wi, wo) FPGAC_CONSTANT_ARG(b)
    for (unsigned row = 0; row < CONFIG::n_rows; row++) {
        data_T in[CONFIG::n_in];
        typename CONFIG::accum_t acc[CONFIG::n_out];
#pragma HLS ARRAY_PARTITION variable=in complete
#pragma HLS ARRAY_PARTITION variable=acc complete
        for (unsigned i = 0; i < CONFIG::n_in; i++) {
#pragma HLS UNROLL
            in[i] = x[row * CONFIG::n_in + i];
        }
        for (unsigned j = 0; j < CONFIG::n_out; j++) {
#pragma HLS UNROLL
            acc[j] = from_mantissa<typename CONFIG::bias_t>(b[j]);
        }
        mac<CONFIG>(in, acc, w, wi, wo);
        for (unsigned j = 0; j < CONFIG::n_out; j++) {
#pragma HLS UNROLL
            y[row * CONFIG::n_out + j] = acc[j];
        }
    }
}

} // namespace fpgac

#endif
