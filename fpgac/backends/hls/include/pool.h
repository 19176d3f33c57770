// fpgac kernel library: max and average pooling, and global pooling (channels-first, 1D and 2D).
//
// Max: the largest element of the window that lies in the image (padding never wins: the
// streamed form pads with the type's smallest value). Average: the exact window sum (padding adds
// 0) times the reciprocal of the window's count, round(2^K / count), which fpgac computed per
// output position (ONNX's count_include_pad and ceil_mode rules) and stores in recip[]: the
// result has K more fractional bits than x and is exact.
//
// CONFIG: as conv.h's geometry (n_chan = n_filt), plus avg (bool), typedefs sum_t (the window
// sum, exact), recip_t (ap_ufixed<K + 1, 1>) and recip_rom_t.
#ifndef FPGAC_POOL_H_
#define FPGAC_POOL_H_

#include "common.h"
#include "window.h"

namespace fpgac {

// io_parallel pooling over whole [C, H, W] arrays.
template <class data_T, class res_T, class CONFIG>
void pool_2d(const data_T x[CONFIG::n_chan * CONFIG::in_height * CONFIG::in_width],
             res_T y[CONFIG::n_chan * CONFIG::out_height * CONFIG::out_width],
             const typename CONFIG::recip_rom_t recip[CONFIG::out_height * CONFIG::out_width]) {
    for (unsigned oh = 0; oh < CONFIG::out_height; oh++) {
        for (unsigned ow = 0; ow < CONFIG::out_width; ow++) {
#pragma HLS PIPELINE II=CONFIG::reuse
            for (unsigned c = 0; c < CONFIG::n_chan; c++) {
                typename CONFIG::sum_t sum = 0;
                data_T best = 0;
                bool found = false;
                for (unsigned kh = 0; kh < CONFIG::filt_height; kh++) {
                    for (unsigned kw = 0; kw < CONFIG::filt_width; kw++) {
                        int ih = int(oh * CONFIG::stride_height + kh * CONFIG::dilation_height) - int(CONFIG::pad_top);
                        int iw = int(ow * CONFIG::stride_width + kw * CONFIG::dilation_width) - int(CONFIG::pad_left);
                        if (ih < 0 || ih >= int(CONFIG::in_height) || iw < 0 || iw >= int(CONFIG::in_width)) continue;
                        data_T v = x[(c * CONFIG::in_height + ih) * CONFIG::in_width + iw];
                        sum += v;
                        if (!found || v > best) best = v;
                        found = true;
                    }
                }
                unsigned o = (c * CONFIG::out_height + oh) * CONFIG::out_width + ow;
                if (CONFIG::avg)
                    y[o] = sum * from_mantissa<typename CONFIG::recip_t>(recip[oh * CONFIG::out_width + ow]);
                else
                    y[o] = best;
            }
        }
    }
}

// io_stream pooling: pixels in, pixels out, through a line buffer.
template <class data_T, class res_T, class CONFIG>
void pool_2d_stream(hls::stream<word<data_T, CONFIG::n_chan> > &in, hls::stream<word<res_T, CONFIG::n_chan> > &out,
                    const typename CONFIG::recip_rom_t recip[CONFIG::out_height * CONFIG::out_width]) {
    const unsigned span_h = CONFIG::dilation_height * (CONFIG::filt_height - 1) + 1;
    const unsigned span_w = CONFIG::dilation_width * (CONFIG::filt_width - 1) + 1;
    const unsigned padded_w = CONFIG::pad_left + CONFIG::in_width + CONFIG::pad_right;
    const unsigned padded_h = CONFIG::pad_top + CONFIG::in_height + CONFIG::pad_bottom;
    window_buffer<data_T, CONFIG::n_chan, span_h, span_w, padded_w> buffer;
    data_T pad;
    if (CONFIG::avg)
        pad = 0;
    else
        set_lowest(pad);
    for (unsigned ph = 0; ph < padded_h; ph++) {
        for (unsigned pw = 0; pw < padded_w; pw++) {
#pragma HLS PIPELINE II=CONFIG::reuse
            data_T pixel[CONFIG::n_chan];
#pragma HLS ARRAY_PARTITION variable=pixel complete
            padded_pixel<CONFIG>(in, ph, pw, pad, pixel);
            buffer.push(pw, pixel);
            unsigned oh, ow;
            if (!window_output<CONFIG>(ph, pw, oh, ow)) continue;
            word<res_T, CONFIG::n_chan> result;
            for (unsigned c = 0; c < CONFIG::n_chan; c++) {
                typename CONFIG::sum_t sum = 0;
                data_T best = buffer.window[0][0][c];
                for (unsigned kh = 0; kh < CONFIG::filt_height; kh++) {
                    for (unsigned kw = 0; kw < CONFIG::filt_width; kw++) {
                        data_T v = buffer.window[kh * CONFIG::dilation_height][kw * CONFIG::dilation_width][c];
                        sum += v;
                        if (v > best) best = v;
                    }
                }
                if (CONFIG::avg)
                    result[c] = sum * from_mantissa<typename CONFIG::recip_t>(recip[oh * CONFIG::out_width + ow]);
                else
                    result[c] = best;
            }
            out.write(result);
        }
    }
}

// Global pooling of a [C, P] array (P positions) to [C].
template <class data_T, class res_T, class CONFIG>
void global_pool(const data_T x[CONFIG::n_chan * CONFIG::n_positions], res_T y[CONFIG::n_chan]) {
    for (unsigned c = 0; c < CONFIG::n_chan; c++) {
        typename CONFIG::sum_t sum = 0;
        data_T best = x[c * CONFIG::n_positions];
        for (unsigned p = 0; p < CONFIG::n_positions; p++) {
            data_T v = x[c * CONFIG::n_positions + p];
            sum += v;
            if (v > best) best = v;
        }
        if (CONFIG::avg)
            y[c] = sum * from_mantissa<typename CONFIG::recip_t>(CONFIG::recip);
        else
            y[c] = best;
    }
}

// Global pooling of a stream of P pixels to one word.
template <class data_T, class res_T, class CONFIG>
void global_pool_stream(hls::stream<word<data_T, CONFIG::n_chan> > &in, hls::stream<word<res_T, CONFIG::n_chan> > &out) {
    typename CONFIG::sum_t sum[CONFIG::n_chan];
    data_T best[CONFIG::n_chan];
#pragma HLS ARRAY_PARTITION variable=sum complete
#pragma HLS ARRAY_PARTITION variable=best complete
    for (unsigned p = 0; p < CONFIG::n_positions; p++) {
#pragma HLS PIPELINE
        word<data_T, CONFIG::n_chan> v = in.read();
        for (unsigned c = 0; c < CONFIG::n_chan; c++) {
            if (p == 0) {
                sum[c] = v[c];
                best[c] = v[c];
            } else {
                sum[c] += v[c];
                if (v[c] > best[c]) best[c] = v[c];
            }
        }
    }
    word<res_T, CONFIG::n_chan> result;
    for (unsigned c = 0; c < CONFIG::n_chan; c++) {
        if (CONFIG::avg)
            result[c] = sum[c] * from_mantissa<typename CONFIG::recip_t>(CONFIG::recip);
        else
            result[c] = best[c];
    }
    out.write(result);
}

} // namespace fpgac

#endif
