// fpgac kernel library: streams of words and the arrays they carry.
//
// In io_stream designs a [C, *spatial] tensor travels as P = prod(spatial) words of C values (one
// position, all channels, positions in raster order); a vector [N] is one word of N values. The
// arrays fpgac's io_parallel kernels take are channels-first: element c of word p is x[c * P + p].
// A layer with no streaming form of its own (dense, softmax, reshape, recurrent layers...) reads
// its input words into an array, runs the array kernel and writes the result back as words.
#ifndef FPGAC_STREAM_H_
#define FPGAC_STREAM_H_

#include "common.h"

namespace fpgac {

template <class T, unsigned C, unsigned P> void read_stream(hls::stream<word<T, C> > &in, T x[C * P]) {
    for (unsigned p = 0; p < P; p++) {
#pragma HLS PIPELINE
        word<T, C> v = in.read();
        for (unsigned c = 0; c < C; c++) x[c * P + p] = v[c];
    }
}

template <class T, unsigned C, unsigned P> void write_stream(const T x[C * P], hls::stream<word<T, C> > &out) {
    for (unsigned p = 0; p < P; p++) {
#pragma HLS PIPELINE
        word<T, C> v;
        for (unsigned c = 0; c < C; c++) v[c] = x[c * P + p];
        out.write(v);
    }
}

// One stream read by K consumers: every word copied to K streams.
template <class T, unsigned C, unsigned P, unsigned K>
void fanout(hls::stream<word<T, C> > &in, hls::stream<word<T, C> > out[K]) {
    for (unsigned p = 0; p < P; p++) {
#pragma HLS PIPELINE
        word<T, C> v = in.read();
        for (unsigned k = 0; k < K; k++) out[k].write(v);
    }
}

// The same words as another element type holding every value exactly (a reshape that keeps the
// word layout, a copy to an output port).
template <class data_T, class res_T, unsigned C, unsigned P>
void copy_stream(hls::stream<word<data_T, C> > &in, hls::stream<word<res_T, C> > &out) {
    for (unsigned p = 0; p < P; p++) {
#pragma HLS PIPELINE
        word<data_T, C> v = in.read();
        word<res_T, C> r;
        for (unsigned c = 0; c < C; c++) r[c] = v[c];
        out.write(r);
    }
}

} // namespace fpgac

#endif
