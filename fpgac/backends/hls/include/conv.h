// fpgac kernel library: 1D and 2D convolution (channels-first, groups and dilation, zero padding).
//
// Both forms gather each output position's receptive field into a vector (c, kh, kw order, zero
// where it lies in the padding) and multiply it with the layer's non-zero weights (dense.h): a
// grouped convolution's weights are block-sparse in that vector, so the cross-group zeros, like
// pruned weights, are simply not in the list. A 1D convolution is a 2D one of height 1.
//
// CONFIG (besides the mac's, with n_in = n_chan * filt_height * filt_width and n_out = n_filt):
// n_chan, in_height, in_width, n_filt, out_height, out_width, filt_height, filt_width,
// stride_height, stride_width, dilation_height, dilation_width, pad_top, pad_left, pad_bottom,
// pad_right.
#ifndef FPGAC_CONV_H_
#define FPGAC_CONV_H_

#include "common.h"
#include "dense.h"
#include "window.h"

namespace fpgac {

template <class CONFIG, class acc_T>
void conv_bias(acc_T acc[CONFIG::n_filt], const typename CONFIG::bias_rom_t b[CONFIG::n_filt]) {
#pragma HLS INLINE
    for (unsigned m = 0; m < CONFIG::n_filt; m++) {
#pragma HLS UNROLL
        acc[m] = from_mantissa<typename CONFIG::bias_t>(b[m]);
    }
}

// io_parallel: x and y are whole [C, H, W] arrays; one output position per CONFIG::reuse cycles.
template <class data_T, class res_T, class CONFIG>
void conv_2d(const data_T x[CONFIG::n_chan * CONFIG::in_height * CONFIG::in_width],
             res_T y[CONFIG::n_filt * CONFIG::out_height * CONFIG::out_width],
             const typename CONFIG::weight_rom_t w[CONFIG::n_rom], const typename CONFIG::in_index_t wi[CONFIG::n_rom],
             const typename CONFIG::out_index_t wo[CONFIG::n_rom], const typename CONFIG::bias_rom_t b[CONFIG::n_filt]) {
    FPGAC_CONSTANT_SPARSE(w, wi, wo) FPGAC_CONSTANT_ARG(b)
    for (unsigned oh = 0; oh < CONFIG::out_height; oh++) {
        for (unsigned ow = 0; ow < CONFIG::out_width; ow++) {
#pragma HLS PIPELINE II=CONFIG::reuse
            data_T field[CONFIG::n_in];
            typename CONFIG::accum_t acc[CONFIG::n_filt];
#pragma HLS ARRAY_PARTITION variable=field complete
#pragma HLS ARRAY_PARTITION variable=acc complete
            for (unsigned c = 0; c < CONFIG::n_chan; c++) {
                for (unsigned kh = 0; kh < CONFIG::filt_height; kh++) {
                    for (unsigned kw = 0; kw < CONFIG::filt_width; kw++) {
                        int ih = int(oh * CONFIG::stride_height + kh * CONFIG::dilation_height) - int(CONFIG::pad_top);
                        int iw = int(ow * CONFIG::stride_width + kw * CONFIG::dilation_width) - int(CONFIG::pad_left);
                        bool inside = ih >= 0 && ih < int(CONFIG::in_height) && iw >= 0 && iw < int(CONFIG::in_width);
                        field[(c * CONFIG::filt_height + kh) * CONFIG::filt_width + kw] =
                            inside ? x[(c * CONFIG::in_height + ih) * CONFIG::in_width + iw] : data_T(0);
                    }
                }
            }
            conv_bias<CONFIG>(acc, b);
            mac_latency<CONFIG>(field, acc, w, wi, wo);
            for (unsigned m = 0; m < CONFIG::n_filt; m++) {
                y[(m * CONFIG::out_height + oh) * CONFIG::out_width + ow] = acc[m];
            }
        }
    }
}

// io_stream: pixels in, pixels out, through a line buffer; one padded pixel per CONFIG::reuse cycles.
template <class data_T, class res_T, class CONFIG>
void conv_2d_stream(hls::stream<word<data_T, CONFIG::n_chan> > &in, hls::stream<word<res_T, CONFIG::n_filt> > &out,
                    const typename CONFIG::weight_rom_t w[CONFIG::n_rom],
                    const typename CONFIG::in_index_t wi[CONFIG::n_rom],
                    const typename CONFIG::out_index_t wo[CONFIG::n_rom],
                    const typename CONFIG::bias_rom_t b[CONFIG::n_filt]) {
    FPGAC_CONSTANT_SPARSE(w, wi, wo) FPGAC_CONSTANT_ARG(b)
    const unsigned span_h = CONFIG::dilation_height * (CONFIG::filt_height - 1) + 1;
    const unsigned span_w = CONFIG::dilation_width * (CONFIG::filt_width - 1) + 1;
    const unsigned padded_w = CONFIG::pad_left + CONFIG::in_width + CONFIG::pad_right;
    const unsigned padded_h = CONFIG::pad_top + CONFIG::in_height + CONFIG::pad_bottom;
    window_buffer<data_T, CONFIG::n_chan, span_h, span_w, padded_w> buffer;
    for (unsigned ph = 0; ph < padded_h; ph++) {
        for (unsigned pw = 0; pw < padded_w; pw++) {
#pragma HLS PIPELINE II=CONFIG::reuse
            data_T pixel[CONFIG::n_chan];
#pragma HLS ARRAY_PARTITION variable=pixel complete
            padded_pixel<CONFIG>(in, ph, pw, data_T(0), pixel);
            buffer.push(pw, pixel);
            unsigned oh, ow;
            if (!window_output<CONFIG>(ph, pw, oh, ow)) continue;
            data_T field[CONFIG::n_in];
            typename CONFIG::accum_t acc[CONFIG::n_filt];
#pragma HLS ARRAY_PARTITION variable=field complete
#pragma HLS ARRAY_PARTITION variable=acc complete
            for (unsigned c = 0; c < CONFIG::n_chan; c++)
                for (unsigned kh = 0; kh < CONFIG::filt_height; kh++)
                    for (unsigned kw = 0; kw < CONFIG::filt_width; kw++)
                        field[(c * CONFIG::filt_height + kh) * CONFIG::filt_width + kw] =
                            buffer.window[kh * CONFIG::dilation_height][kw * CONFIG::dilation_width][c];
            conv_bias<CONFIG>(acc, b);
            mac_latency<CONFIG>(field, acc, w, wi, wo);
            word<res_T, CONFIG::n_filt> result;
            for (unsigned m = 0; m < CONFIG::n_filt; m++) result[m] = acc[m];
            out.write(result);
        }
    }
}

} // namespace fpgac

#endif
