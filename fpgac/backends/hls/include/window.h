// fpgac kernel library: the sliding window of a streamed image (line buffer + window registers).
//
// A [C, H, W] image arrives one pixel (all C channels) at a time, in raster order, over the
// padded grid (padding pixels are pushed by the kernel itself). The buffer keeps the last ROWS - 1
// rows of the padded image (the line buffer, one BRAM per row) and a ROWS x COLS block of
// registers, the window, whose bottom-right pixel is the one pushed last. ROWS and COLS are the
// dilated kernel's extent, so tap (i, j) of a kernel with dilation (dh, dw) is
// window[i * dh][j * dw]. A 1D signal is an image of height 1.
#ifndef FPGAC_WINDOW_H_
#define FPGAC_WINDOW_H_

#include "common.h"

namespace fpgac {

template <class T, unsigned C, unsigned ROWS, unsigned COLS, unsigned WIDTH> struct window_buffer {
    T lines[ROWS > 1 ? ROWS - 1 : 1][WIDTH][C];
    T window[ROWS][COLS][C];

    window_buffer() {
#pragma HLS ARRAY_PARTITION variable=lines complete dim=1
#pragma HLS ARRAY_PARTITION variable=lines complete dim=3
#pragma HLS ARRAY_PARTITION variable=window complete dim=0
        for (unsigned c = 0; c < C; c++) {
            for (unsigned r = 0; r < ROWS; r++)
                for (unsigned j = 0; j < COLS; j++) window[r][j][c] = 0;
            for (unsigned r = 0; r + 1 < ROWS; r++)
                for (unsigned x = 0; x < WIDTH; x++) lines[r][x][c] = 0;
        }
    }

    // Push the pixel at column col of the current row: the window moves one column right.
    void push(unsigned col, const T pixel[C]) {
#pragma HLS INLINE
        for (unsigned c = 0; c < C; c++) {
#pragma HLS UNROLL
            for (unsigned r = 0; r < ROWS; r++) {
                for (unsigned j = 0; j + 1 < COLS; j++) window[r][j][c] = window[r][j + 1][c];
                window[r][COLS - 1][c] = r + 1 < ROWS ? lines[r][col][c] : pixel[c];
            }
            for (unsigned r = 0; r + 2 < ROWS; r++) lines[r][col][c] = lines[r + 1][col][c];
            if (ROWS > 1) lines[ROWS > 1 ? ROWS - 2 : 0][col][c] = pixel[c];
        }
    }
};

// Where the window stands after pushing padded pixel (ph, pw): whether it is an output position
// of a window of extent (span_h, span_w) moved by (stride_h, stride_w), and which one.
template <class CONFIG> bool window_output(unsigned ph, unsigned pw, unsigned &oh, unsigned &ow) {
#pragma HLS INLINE
    const unsigned span_h = CONFIG::dilation_height * (CONFIG::filt_height - 1) + 1;
    const unsigned span_w = CONFIG::dilation_width * (CONFIG::filt_width - 1) + 1;
    if (ph + 1 < span_h || pw + 1 < span_w) return false;
    unsigned top = ph + 1 - span_h, left = pw + 1 - span_w;
    if (top % CONFIG::stride_height != 0 || left % CONFIG::stride_width != 0) return false;
    oh = top / CONFIG::stride_height;
    ow = left / CONFIG::stride_width;
    return oh < CONFIG::out_height && ow < CONFIG::out_width;
}

// Whether padded pixel (ph, pw) lies inside the image (else it is padding).
template <class CONFIG> bool inside_image(unsigned ph, unsigned pw) {
#pragma HLS INLINE
    int h = int(ph) - int(CONFIG::pad_top), w = int(pw) - int(CONFIG::pad_left);
    return h >= 0 && h < int(CONFIG::in_height) && w >= 0 && w < int(CONFIG::in_width);
}

// Padded pixel (ph, pw): the next word of the stream inside the image, `pad` in every channel outside.
template <class CONFIG, class data_T>
void padded_pixel(hls::stream<word<data_T, CONFIG::n_chan> > &in, unsigned ph, unsigned pw, const data_T &pad,
                  data_T pixel[CONFIG::n_chan]) {
#pragma HLS INLINE
    if (inside_image<CONFIG>(ph, pw)) {
        word<data_T, CONFIG::n_chan> v = in.read();
        for (unsigned c = 0; c < CONFIG::n_chan; c++) pixel[c] = v[c];
    } else {
        for (unsigned c = 0; c < CONFIG::n_chan; c++) pixel[c] = pad;
    }
}

} // namespace fpgac

#endif
