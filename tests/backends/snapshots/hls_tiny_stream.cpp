// tiny: model 'tiny' as a Vitis HLS top function, written by fpgac.
// io_stream: ports and layers are hls::stream, one process per layer under DATAFLOW.
// Kernels: firmware/fpgac/*.h; types: defines.h; layer configs: parameters.h; ROMs: weights/*.h.
#include "tiny.h"
#include "parameters.h"

void tiny(hls::stream<x_word_t> &x, hls::stream<relu_word_t> &relu) {
#pragma HLS INTERFACE axis port=x
#pragma HLS INTERFACE axis port=relu
#pragma HLS DATAFLOW

    // fc: Dense [3] -> [2]
    x_t fc_in[3];
    fpgac::read_stream<x_t, 3, 1>(x, fc_in);
    fc_t fc_out[2];
    fpgac::dense<x_t, fc_t, fc_config>(fc_in, fc_out, fc_w, fc_wi, fc_wo, fc_b);
    hls::stream<fc_word_t> fc("fc");
#pragma HLS STREAM variable=fc depth=1
    fpgac::write_stream<fc_t, 2, 1>(fc_out, fc);

    // relu: Activation(relu) [2] -> [2]
    hls::stream<relu_exact_word_t> relu_exact("relu_exact");
#pragma HLS STREAM variable=relu_exact depth=1
    fpgac::map_stream<fpgac::relu_op, fc_t, relu_exact_t, 2, 1>(fc, relu_exact);

    // relu_exact_q: Quant [2] -> [2]
    fpgac::map_stream<fpgac::requantize_op, relu_exact_t, relu_t, 2, 1>(relu_exact, relu);
}
