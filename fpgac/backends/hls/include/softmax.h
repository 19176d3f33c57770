// fpgac kernel library: softmax and log-softmax by fpgac's tables.
//
// Along one axis of an [outer, n, inner] array: z = x - max(x) (exact), e = exp(z) from the exp
// table, S = sum(e) (exact), then y = e * reciprocal(S) (exact product of two table values), or
// for log-softmax y = z - log(S). The tables are the ones fpgac computed (fpgac.ir.tables), so
// every backend gives the same bits.
//
// CONFIG: n_outer, n, n_inner, log (bool), typedefs z_t (x - max, exact), exp_t (exp table
// output), sum_t (S, exact), inv_t (reciprocal or log table output), exp_table and inv_table
// (TABLE configs, see common.h).
#ifndef FPGAC_SOFTMAX_H_
#define FPGAC_SOFTMAX_H_

#include "common.h"

namespace fpgac {

template <class data_T, class res_T, class CONFIG>
void softmax(const data_T x[CONFIG::n_outer * CONFIG::n * CONFIG::n_inner], res_T y[CONFIG::n_outer * CONFIG::n * CONFIG::n_inner],
             const typename CONFIG::exp_table::value_t exp_values[CONFIG::exp_table::size],
             const typename CONFIG::inv_table::value_t inv_values[CONFIG::inv_table::size]) {
    for (unsigned o = 0; o < CONFIG::n_outer; o++) {
        for (unsigned i = 0; i < CONFIG::n_inner; i++) {
            const unsigned base = o * CONFIG::n * CONFIG::n_inner + i;
            data_T largest = x[base];
            for (unsigned k = 1; k < CONFIG::n; k++) {
                if (x[base + k * CONFIG::n_inner] > largest) largest = x[base + k * CONFIG::n_inner];
            }
            typename CONFIG::z_t z[CONFIG::n];
            typename CONFIG::exp_t e[CONFIG::n];
#pragma HLS ARRAY_PARTITION variable=z complete
#pragma HLS ARRAY_PARTITION variable=e complete
            typename CONFIG::sum_t total = 0;
            for (unsigned k = 0; k < CONFIG::n; k++) {
                z[k] = x[base + k * CONFIG::n_inner] - largest;
                e[k] = lookup_value<typename CONFIG::exp_table, typename CONFIG::exp_t>(z[k], exp_values);
                total += e[k];
            }
            typename CONFIG::inv_t inv = lookup_value<typename CONFIG::inv_table, typename CONFIG::inv_t>(total, inv_values);
            for (unsigned k = 0; k < CONFIG::n; k++) {
                if (CONFIG::log)
                    y[base + k * CONFIG::n_inner] = z[k] - inv;
                else
                    y[base + k * CONFIG::n_inner] = e[k] * inv;
            }
        }
    }
}

} // namespace fpgac

#endif
