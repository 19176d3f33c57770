// tiny: model 'tiny' as a Vitis HLS top function, written by fpgac.
// io_parallel: ports and tensors are arrays, the whole network one pipeline.
// Kernels: firmware/fpgac/*.h; types: defines.h; layer configs: parameters.h; ROMs: weights/*.h.
#include "tiny.h"
#include "parameters.h"

void tiny(x_t x[3], relu_t relu[2]) {
#pragma HLS ARRAY_RESHAPE variable=x complete dim=0
#pragma HLS ARRAY_PARTITION variable=relu complete dim=0
#pragma HLS INTERFACE ap_vld port=x,relu
#pragma HLS PIPELINE

    // fc: Dense [3] -> [2]
    fc_t fc[2];
#pragma HLS ARRAY_PARTITION variable=fc complete dim=0
    fpgac::dense<x_t, fc_t, fc_config>(x, fc, fc_w, fc_wi, fc_wo, fc_b);

    // relu: Activation(relu) [2] -> [2]
    relu_exact_t relu_exact[2];
#pragma HLS ARRAY_PARTITION variable=relu_exact complete dim=0
    fpgac::map<fpgac::relu_op, fc_t, relu_exact_t, 2>(fc, relu_exact);

    // relu_exact_q: Quant [2] -> [2]
    fpgac::map<fpgac::requantize_op, relu_exact_t, relu_t, 2>(relu_exact, relu);
}
