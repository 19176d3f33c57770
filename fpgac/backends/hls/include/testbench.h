// fpgac kernel library: what the generated testbench (<model>_test.cpp) needs, and nothing the
// design uses. Reads tb_data (one vector a line, values in each port's channels-first order),
// writes the outputs, and compares them bit for bit with the golden model's.
#ifndef FPGAC_TESTBENCH_H_
#define FPGAC_TESTBENCH_H_

#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include "common.h"

namespace fpgac {
namespace tb {

// One line of numbers; false at the end of the file.
inline bool read_line(std::istream &in, std::vector<double> &values) {
    std::string line;
    if (!std::getline(in, line)) return false;
    values.clear();
    const char *p = line.c_str();
    for (;;) {
        char *end;
        double v = std::strtod(p, &end);
        if (end == p) break;
        values.push_back(v);
        p = end;
    }
    return true;
}

// x[i] = values[offset + i]: the test vectors hold exact values of the input type.
template <class T> void load(const std::vector<double> &values, size_t offset, T *x, unsigned n) {
    for (unsigned i = 0; i < n; i++) x[i] = values[offset + i];
}

template <class T> unsigned long differing_bits(const T &a, const T &b) {
    unsigned long long diff = (mantissa(a) ^ mantissa(b)).to_uint64();
    if (T::width < 64) diff &= (1ULL << T::width) - 1;
    unsigned long bits = 0;
    for (; diff; diff >>= 1) bits += diff & 1;
    return bits;
}

// Mismatching bits of y against the golden values; the first few mismatches are printed.
template <class T>
unsigned long compare(const T *y, unsigned n, const std::vector<double> &golden, size_t offset, long vector,
                      const char *port, unsigned long &words, unsigned long &reported) {
    unsigned long bits = 0;
    for (unsigned i = 0; i < n; i++) {
        T expected = golden[offset + i];
        if (y[i] == expected) continue;
        bits += differing_bits(y[i], expected);
        words++;
        if (reported++ < 10)
            std::cout << "MISMATCH vector " << vector << " " << port << "[" << i << "]: got " << y[i].to_double()
                      << ", golden " << expected.to_double() << std::endl;
    }
    return bits;
}

template <class T> void write_values(std::ostream &out, const T *y, unsigned n) {
    for (unsigned i = 0; i < n; i++) out << std::setprecision(17) << y[i].to_double() << ' ';
}

template <class T> void write_mantissas(std::ostream &out, const T *y, unsigned n) {
    for (unsigned i = 0; i < n; i++) out << (long long)mantissa(y[i]).to_int64() << ' ';
}

// A channels-first [C, P] array as P words of C, and back.
template <class T, unsigned C, unsigned P> void to_stream(const T *x, hls::stream<word<T, C> > &s) {
    for (unsigned p = 0; p < P; p++) {
        word<T, C> v;
        for (unsigned c = 0; c < C; c++) v[c] = x[c * P + p];
        s.write(v);
    }
}

template <class T, unsigned C, unsigned P> bool from_stream(hls::stream<word<T, C> > &s, T *y) {
    for (unsigned p = 0; p < P; p++) {
        if (s.empty()) return false;
        word<T, C> v = s.read();
        for (unsigned c = 0; c < C; c++) y[c * P + p] = v[c];
    }
    return s.empty();
}

} // namespace tb
} // namespace fpgac

#endif
