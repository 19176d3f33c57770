// fpgac kernel library: LSTM and GRU (ONNX gate order, forward), step by step as fpgac's golden
// model (fpgac/sim/recurrent.py) defines them.
//
// Each step: the gate pre-activations W x_t + R h + biases are exact sums in accum_t (the
// non-zero weights only, dense.h), requantized to gate_t; sigmoid and tanh come from fpgac's
// tables, which hold x >= 0 and are read at |g| (sigmoid(-x) = 1 - sigmoid(x), tanh(-x) =
// -tanh(x)); the new state is an exact expression requantized once to its type. The table values
// are held in sig_t / tanh_t / tanh_cell_t, signed types one bit wider than the tables' own (so
// 1 - sigmoid and -tanh fit), which leaves every product and sum exact.
//
// CONFIG: n_steps, n_in, n_hidden, typedefs accum_t, gate_t, state_t, (LSTM) cell_t, sig_t,
// tanh_t, (LSTM) tanh_cell_t, the ROM types, mac configs w_config, r_config (GRU: rn_config) and
// table configs sigmoid_table, tanh_table, (LSTM) tanh_cell_table; GRU: linear_before_reset.
#ifndef FPGAC_RECURRENT_H_
#define FPGAC_RECURRENT_H_

#include "common.h"
#include "dense.h"

namespace fpgac {

// A gate read from a magnitude-indexed table, as a value of res_T: table[|g|] for g >= 0; for g < 0,
// 1 - table[|g|] when ONE_MINUS (sigmoid(-g) = 1 - sigmoid(g)), else -table[|g|] (tanh is odd).
template <class TABLE, class res_T, bool ONE_MINUS, class data_T>
res_T gate(const data_T &g, const typename TABLE::value_t values[TABLE::size]) {
#pragma HLS INLINE
    typedef ap_int<data_T::width + 1> magnitude_t;
    typedef ap_int<res_T::width + 1> value_t;
    magnitude_t m = mantissa(g);
    bool negative = m < 0;
    if (negative) m = -m;
    value_t v = lookup<TABLE>(m, values);
    if (negative) v = ONE_MINUS ? value_t((value_t(1) << (res_T::width - res_T::iwidth)) - v) : value_t(-v);
    return from_mantissa<res_T>(v);
}

template <class data_T, class CONFIG>
void lstm(const data_T x[CONFIG::n_steps * CONFIG::n_in],
          typename CONFIG::state_t y[CONFIG::n_steps * CONFIG::n_hidden],
          typename CONFIG::state_t h_out[CONFIG::n_hidden], typename CONFIG::cell_t c_out[CONFIG::n_hidden],
          const typename CONFIG::w_config::weight_rom_t w[CONFIG::w_config::n_rom],
          const typename CONFIG::w_config::in_index_t wi[CONFIG::w_config::n_rom],
          const typename CONFIG::w_config::out_index_t wo[CONFIG::w_config::n_rom],
          const typename CONFIG::r_config::weight_rom_t r[CONFIG::r_config::n_rom],
          const typename CONFIG::r_config::in_index_t ri[CONFIG::r_config::n_rom],
          const typename CONFIG::r_config::out_index_t ro[CONFIG::r_config::n_rom],
          const typename CONFIG::bias_rom_t bias[4 * CONFIG::n_hidden],
          const typename CONFIG::state_rom_t h0[CONFIG::n_hidden], const typename CONFIG::cell_rom_t c0[CONFIG::n_hidden],
          const typename CONFIG::sigmoid_table::value_t sigmoid_values[CONFIG::sigmoid_table::size],
          const typename CONFIG::tanh_table::value_t tanh_values[CONFIG::tanh_table::size],
          const typename CONFIG::tanh_cell_table::value_t tanh_cell_values[CONFIG::tanh_cell_table::size]) {
    FPGAC_CONSTANT_SPARSE(w, wi, wo) FPGAC_CONSTANT_SPARSE(r, ri, ro)
    const unsigned H = CONFIG::n_hidden;
    typename CONFIG::state_t h[H];
    typename CONFIG::cell_t c[H];
#pragma HLS ARRAY_PARTITION variable=h complete
#pragma HLS ARRAY_PARTITION variable=c complete
    for (unsigned j = 0; j < H; j++) {
        h[j] = from_mantissa<typename CONFIG::state_t>(h0[j]);
        c[j] = from_mantissa<typename CONFIG::cell_t>(c0[j]);
    }
    for (unsigned t = 0; t < CONFIG::n_steps; t++) {
        data_T xt[CONFIG::n_in];
        typename CONFIG::accum_t acc[4 * H];
#pragma HLS ARRAY_PARTITION variable=xt complete
#pragma HLS ARRAY_PARTITION variable=acc complete
        for (unsigned i = 0; i < CONFIG::n_in; i++) xt[i] = x[t * CONFIG::n_in + i];
        for (unsigned g = 0; g < 4 * H; g++) acc[g] = from_mantissa<typename CONFIG::accum_t>(bias[g]);
        mac<typename CONFIG::w_config>(xt, acc, w, wi, wo);
        mac<typename CONFIG::r_config>(h, acc, r, ri, ro);
        for (unsigned j = 0; j < H; j++) {
            typedef typename CONFIG::gate_t gate_t;
            typename CONFIG::sig_t i = gate<typename CONFIG::sigmoid_table, typename CONFIG::sig_t, true>(
                requantize<gate_t>(acc[j]), sigmoid_values);
            typename CONFIG::sig_t o = gate<typename CONFIG::sigmoid_table, typename CONFIG::sig_t, true>(
                requantize<gate_t>(acc[H + j]), sigmoid_values);
            typename CONFIG::sig_t f = gate<typename CONFIG::sigmoid_table, typename CONFIG::sig_t, true>(
                requantize<gate_t>(acc[2 * H + j]), sigmoid_values);
            typename CONFIG::tanh_t k = gate<typename CONFIG::tanh_table, typename CONFIG::tanh_t, false>(
                requantize<gate_t>(acc[3 * H + j]), tanh_values);
            c[j] = requantize<typename CONFIG::cell_t>(f * c[j] + i * k);
            typename CONFIG::tanh_cell_t tc =
                gate<typename CONFIG::tanh_cell_table, typename CONFIG::tanh_cell_t, false>(c[j], tanh_cell_values);
            h[j] = requantize<typename CONFIG::state_t>(o * tc);
            y[t * H + j] = h[j];
        }
    }
    for (unsigned j = 0; j < H; j++) {
        h_out[j] = h[j];
        c_out[j] = c[j];
    }
}

template <class data_T, class CONFIG>
void gru(const data_T x[CONFIG::n_steps * CONFIG::n_in], typename CONFIG::state_t y[CONFIG::n_steps * CONFIG::n_hidden],
         typename CONFIG::state_t h_out[CONFIG::n_hidden],
         const typename CONFIG::w_config::weight_rom_t w[CONFIG::w_config::n_rom],
         const typename CONFIG::w_config::in_index_t wi[CONFIG::w_config::n_rom],
         const typename CONFIG::w_config::out_index_t wo[CONFIG::w_config::n_rom],
         const typename CONFIG::r_config::weight_rom_t r[CONFIG::r_config::n_rom],
         const typename CONFIG::r_config::in_index_t ri[CONFIG::r_config::n_rom],
         const typename CONFIG::r_config::out_index_t ro[CONFIG::r_config::n_rom],
         const typename CONFIG::rn_config::weight_rom_t rn[CONFIG::rn_config::n_rom],
         const typename CONFIG::rn_config::in_index_t rni[CONFIG::rn_config::n_rom],
         const typename CONFIG::rn_config::out_index_t rno[CONFIG::rn_config::n_rom],
         const typename CONFIG::bias_rom_t bias_x[3 * CONFIG::n_hidden],
         const typename CONFIG::bias_rom_t bias_h[3 * CONFIG::n_hidden],
         const typename CONFIG::state_rom_t h0[CONFIG::n_hidden],
         const typename CONFIG::sigmoid_table::value_t sigmoid_values[CONFIG::sigmoid_table::size],
         const typename CONFIG::tanh_table::value_t tanh_values[CONFIG::tanh_table::size]) {
    FPGAC_CONSTANT_SPARSE(w, wi, wo) FPGAC_CONSTANT_SPARSE(r, ri, ro) FPGAC_CONSTANT_SPARSE(rn, rni, rno)
    const unsigned H = CONFIG::n_hidden;
    typedef typename CONFIG::accum_t accum_t;
    typedef typename CONFIG::gate_t gate_t;
    typedef typename CONFIG::state_t state_t;
    typedef typename CONFIG::sig_t sig_t;
    typedef typename CONFIG::tanh_t tanh_t;
    state_t h[H];
#pragma HLS ARRAY_PARTITION variable=h complete
    for (unsigned j = 0; j < H; j++) h[j] = from_mantissa<state_t>(h0[j]);
    const sig_t one = 1;
    for (unsigned t = 0; t < CONFIG::n_steps; t++) {
        data_T xt[CONFIG::n_in];
        accum_t ax[3 * H], ah[3 * H];
        sig_t z[H], reset[H];
        tanh_t n[H];
#pragma HLS ARRAY_PARTITION variable=xt complete
#pragma HLS ARRAY_PARTITION variable=ax complete
#pragma HLS ARRAY_PARTITION variable=ah complete
        for (unsigned i = 0; i < CONFIG::n_in; i++) xt[i] = x[t * CONFIG::n_in + i];
        for (unsigned g = 0; g < 3 * H; g++) {
            ax[g] = from_mantissa<accum_t>(bias_x[g]);
            ah[g] = from_mantissa<accum_t>(bias_h[g]);
        }
        mac<typename CONFIG::w_config>(xt, ax, w, wi, wo);
        mac<typename CONFIG::r_config>(h, ah, r, ri, ro);  // rows z, r (and n with linear_before_reset)
        for (unsigned j = 0; j < H; j++) {
            z[j] = gate<typename CONFIG::sigmoid_table, sig_t, true>(requantize<gate_t>(ax[j] + ah[j]), sigmoid_values);
            reset[j] = gate<typename CONFIG::sigmoid_table, sig_t, true>(requantize<gate_t>(ax[H + j] + ah[H + j]),
                                                                          sigmoid_values);
        }
        if (CONFIG::linear_before_reset) {
            for (unsigned j = 0; j < H; j++)
                n[j] = gate<typename CONFIG::tanh_table, tanh_t, false>(
                    requantize<gate_t>(ax[2 * H + j] + reset[j] * ah[2 * H + j]), tanh_values);
        } else {
            state_t q[H];
            accum_t an[H];
#pragma HLS ARRAY_PARTITION variable=q complete
#pragma HLS ARRAY_PARTITION variable=an complete
            for (unsigned j = 0; j < H; j++) {
                q[j] = requantize<state_t>(reset[j] * h[j]);
                an[j] = ah[2 * H + j];  // the n rows' bias, R_n not yet applied
            }
            mac<typename CONFIG::rn_config>(q, an, rn, rni, rno);
            for (unsigned j = 0; j < H; j++)
                n[j] = gate<typename CONFIG::tanh_table, tanh_t, false>(requantize<gate_t>(ax[2 * H + j] + an[j]), tanh_values);
        }
        for (unsigned j = 0; j < H; j++) {
            h[j] = requantize<state_t>((one - z[j]) * n[j] + z[j] * h[j]);
            y[t * H + j] = h[j];
        }
    }
    for (unsigned j = 0; j < H; j++) h_out[j] = h[j];
}

} // namespace fpgac

#endif
