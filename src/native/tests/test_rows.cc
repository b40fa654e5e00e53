// Every SIMD row function against its C twin (row_common.cc), libyuv style:
// random data, every width from 0 to 80 plus a few long rows, unaligned
// pointers. Prints one line per failure and a closing "N passed, N failed".
// Run natively by run-native.sh and under qemu-aarch64 by run-aarch64.sh.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../cpu.h"
#include "../row.h"

namespace coreseg {
namespace {

std::mt19937 rng(12345);
int passed = 0, failed = 0;

void Check(bool ok, const std::string& backend, const char* what, int width,
           int detail = 0) {
  if (ok) {
    ++passed;
  } else {
    ++failed;
    std::printf("FAIL %s %s width=%d case=%d\n", backend.c_str(), what, width, detail);
  }
}

std::vector<int> Widths() {
  std::vector<int> w;
  for (int i = 0; i <= 80; ++i) w.push_back(i);
  for (int i : {127, 128, 129, 255, 256, 257, 1000, 4033}) w.push_back(i);
  return w;
}

template <typename T>
T RandomLabel(int max_label) {
  // Mostly in range, some just outside, some extreme (negative for int32).
  const int r = static_cast<int>(rng() % 16);
  if (r == 0) return static_cast<T>(rng());
  return static_cast<T>(rng() % (max_label + 2));
}

template <typename T>
void TestLabelRows(const RowFunctions& simd, const char* type) {
  const std::string name = simd.name;
  for (int width : Widths()) {
    for (int offset = 0; offset < 3; ++offset) {
      std::vector<T> src(width + offset);
      for (T& v : src) v = RandomLabel<T>(40);
      const T* s = src.data() + offset;

      // render_mask with 0, 1 and several selected ids (one never present).
      for (int nsel : {0, 1, 3, 9}) {
        std::vector<int32_t> sel;
        for (int k = 0; k < nsel; ++k) sel.push_back(static_cast<int32_t>(rng() % 42));
        if (nsel == 9) sel.back() = -7;
        const uint32_t color = rng();
        std::vector<uint8_t> a(4 * width + 1, 0xAB), b(4 * width + 1, 0xAB);
        RenderMaskRow_C(s, sel.data(), nsel, color, a.data() + 1, width);
        simd.labels<T>().render_mask(s, sel.data(), nsel, color, b.data() + 1, width);
        Check(a == b, name, (std::string("render_mask_") + type).c_str(), width, nsel);
      }

      // colorize with palettes smaller and larger than the labels present.
      for (uint32_t n : {0u, 1u, 17u, 41u}) {
        std::vector<uint32_t> palette(n + 1);
        for (uint32_t& c : palette) c = rng();
        palette[n] = 0;
        std::vector<uint8_t> a(4 * width + 1, 0xCD), b(4 * width + 1, 0xCD);
        ColorizeRow_C(s, palette.data(), n, a.data() + 1, width);
        simd.labels<T>().colorize(s, palette.data(), n, b.data() + 1, width);
        Check(a == b, name, (std::string("colorize_") + type).c_str(), width, n);
      }

      // resize_labels with a random map into the source row.
      if (width > 0) {
        std::vector<int32_t> xmap(width + 7);
        for (int32_t& m : xmap) m = static_cast<int32_t>(rng() % width);
        std::vector<T> a(width + 7 + 1), b(width + 7 + 1);
        ResizeLabelsRow_C(s, xmap.data(), a.data() + 1, width + 7);
        simd.labels<T>().resize_labels(s, xmap.data(), b.data() + 1, width + 7);
        Check(a == b, name, (std::string("resize_labels_") + type).c_str(), width);
      }
    }
  }
}

void TestBlend(const RowFunctions& simd) {
  // Terms per byte from random colours and alphas, on 1 to 5 rows with
  // strides of their own; the C row equals BlendPixel, the definition of
  // every blend.
  for (int width : Widths()) {
    const int n = 4 * width + (width % 3);
    const int rows = 1 + width % 5;
    const ptrdiff_t src_stride = n + 3, dst_stride = n + 7;
    std::vector<uint8_t> src(rows * src_stride + 1), color(n), alpha(n);
    std::vector<uint16_t> keep(n + 1), add(n + 1);
    for (uint8_t& v : src) v = static_cast<uint8_t>(rng());
    for (int i = 0; i < n; ++i) {
      color[i] = rng();
      // Include the extremes 0 and 255 often: they must be exact.
      const uint32_t r = rng() % 8;
      alpha[i] = r == 0 ? 0 : (r == 1 ? 255 : static_cast<uint8_t>(rng()));
      keep[i + 1] = static_cast<uint16_t>(255 - alpha[i]);
      add[i + 1] = static_cast<uint16_t>(color[i] * alpha[i] + 128);
    }
    std::vector<uint8_t> a(rows * dst_stride + 1, 7), b(a);
    BlendRow_C(src.data() + 1, src_stride, keep.data() + 1, add.data() + 1, a.data() + 1, dst_stride, rows, n);
    bool exact = true;
    for (int r = 0; r < rows; ++r)
      for (int i = 0; i < dst_stride; ++i) {
        const uint8_t want = i < n ? BlendPixel(src[1 + r * src_stride + i], color[i], alpha[i]) : 7;
        exact = exact && a[1 + r * dst_stride + i] == want;
      }
    Check(exact, "scalar", "blend_is_blend_pixel", width, rows);
    simd.blend(src.data() + 1, src_stride, keep.data() + 1, add.data() + 1, b.data() + 1, dst_stride, rows, n);
    Check(a == b, simd.name, "blend", width, rows);
    // In place (dst == src), as composite(out=image) does.
    std::vector<uint8_t> c(src);
    simd.blend(c.data() + 1, src_stride, keep.data() + 1, add.data() + 1, c.data() + 1, src_stride, rows, n);
    bool in_place = true;
    for (int r = 0; r < rows; ++r)
      for (int i = 0; i < src_stride; ++i)
        in_place = in_place && c[1 + r * src_stride + i] == (i < n ? a[1 + r * dst_stride + i] : src[1 + r * src_stride + i]);
    Check(in_place, simd.name, "blend_in_place", width, rows);
  }
}

void TestBlendPixels(const RowFunctions& simd) {
  // Random increasing pixel lists (neighbours, gaps, the first pixel),
  // never the row's last pixel; every other byte must be left as it was.
  for (int width : Widths()) {
    if (width < 2) continue;
    for (int channels : {3, 4}) {
      std::vector<uint16_t> keep(kPatternBytes), add(kPatternBytes);
      for (int k = 0; k < kPatternBytes; ++k) {
        const uint8_t alpha = static_cast<uint8_t>(k % channels == 3 ? 0 : rng() % 4 == 0 ? 255 : rng());
        keep[k] = static_cast<uint16_t>(255 - alpha);
        add[k] = static_cast<uint16_t>(static_cast<uint8_t>(rng()) * alpha + 128);
      }
      std::vector<int32_t> xs;
      for (int x = 0; x + 1 < width; ++x)
        if (rng() % 3 == 0) xs.push_back(x);
      std::vector<uint8_t> row(width * channels + 1);
      for (uint8_t& v : row) v = static_cast<uint8_t>(rng());
      std::vector<uint8_t> a(row), b(row), expected(row);
      for (int32_t x : xs)
        for (int c = 0; c < channels; ++c) {
          uint8_t& v = expected[1 + x * channels + c];
          v = BlendPatternByte(v, keep[c], add[c]);
        }
      const int n = static_cast<int>(xs.size());
      BlendPixelsRow_C(a.data() + 1, xs.data(), n, keep.data(), add.data(), channels);
      Check(a == expected, "scalar", "blend_pixels", width, channels);
      simd.blend_pixels(b.data() + 1, xs.data(), n, keep.data(), add.data(), channels);
      Check(a == b, simd.name, "blend_pixels", width, channels);
    }
  }
}

// A random set of resample coefficients: non-negative int16 summing to
// 1 << kCoeffBits, as resample.cc makes them, with zero padding taps.
std::vector<int16_t> RandomCoeffs(int taps) {
  std::vector<int16_t> c(taps, 0);
  const int used = 1 + static_cast<int>(rng() % taps);
  int left = 1 << kCoeffBits;
  for (int k = 0; k < used - 1; ++k) {
    const int v = static_cast<int>(rng() % (left / 2 + 1));
    c[k] = static_cast<int16_t>(v);
    left -= v;
  }
  c[used - 1] = static_cast<int16_t>(left);
  return c;
}

void TestResample(const RowFunctions& simd) {
  for (int width : Widths()) {
    for (int taps : {2, 4, 6, 20, 40}) {
      // Vertical: `taps` rows of `width` bytes each, at odd offsets.
      std::vector<std::vector<uint8_t>> rows(taps, std::vector<uint8_t>(width + 1));
      std::vector<const uint8_t*> ptrs;
      for (auto& r : rows) {
        for (uint8_t& v : r) v = rng();
        if (rng() % 4 == 0) std::fill(r.begin(), r.end(), 255);  // worst case
        ptrs.push_back(r.data() + 1);
      }
      const std::vector<int16_t> vc = RandomCoeffs(taps);
      std::vector<int16_t> a(width), b(width);
      ResampleVerticalRow_C(ptrs.data(), vc.data(), taps, a.data(), width);
      simd.resample_vertical(ptrs.data(), vc.data(), taps, b.data(), width);
      Check(a == b, simd.name, "resample_vertical", width, taps);

      // Horizontal: output `width` pixels from a source of src_w pixels,
      // interleaved, split into planes (deinterleave), taps padded to 8.
      for (int channels : {3, 4}) {
        const int src_w = 1 + width * 2;
        const int taps8 = (taps + 7) & ~7;
        std::vector<int16_t> src(src_w * channels + 1);
        for (int16_t& v : src) v = static_cast<int16_t>(rng() % (255 * 128 + 1));
        // Planes as short as the contract allows (start + taps values), so
        // the sanitizers see any read past them.
        const ptrdiff_t plane_stride = src_w - 1 + taps8;
        std::vector<int16_t> pa(channels * plane_stride, 0), pb(pa);
        DeinterleaveRow_C(src.data() + 1, channels, pa.data(), plane_stride, src_w);
        bool split = true;
        for (int c = 0; c < channels; ++c)
          for (int x = 0; x < src_w; ++x) split = split && pa[c * plane_stride + x] == src[1 + x * channels + c];
        Check(split, "scalar", "deinterleave", src_w, channels);
        simd.deinterleave(src.data() + 1, channels, pb.data(), plane_stride, src_w);
        Check(pa == pb, simd.name, "deinterleave", src_w, channels);

        std::vector<int32_t> start(width);
        std::vector<int16_t> coeffs;
        for (int x = 0; x < width; ++x) {
          start[x] = static_cast<int32_t>(rng() % src_w);
          std::vector<int16_t> c = RandomCoeffs(taps);
          c.resize(taps8, 0);
          coeffs.insert(coeffs.end(), c.begin(), c.end());
        }
        std::vector<uint8_t> ha(4 * width + 1, 7), hb(4 * width + 1, 7);
        ResampleHorizontalRow_C(pa.data(), plane_stride, channels, start.data(), coeffs.data(), taps8,
                                ha.data() + 1, width);
        simd.resample_horizontal(pa.data(), plane_stride, channels, start.data(), coeffs.data(), taps8,
                                 hb.data() + 1, width);
        Check(ha == hb, simd.name,
              channels == 3 ? "resample_horizontal_rgb" : "resample_horizontal_rgba",
              width, taps8);
      }
    }
  }
}

void TestArgmax(const RowFunctions& simd) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int width : Widths()) {
    for (int channels : {1, 2, 3, 7, 21, 40}) {
      const ptrdiff_t plane = width + 5;  // planes padded, as strided logits are
      std::vector<float> f(plane * channels + 1);
      std::vector<uint16_t> h(plane * channels + 1);
      for (size_t i = 0; i < f.size(); ++i) {
        // Few distinct values, so ties are common; some NaN and infinities.
        const uint32_t r = rng() % 32;
        f[i] = r == 0 ? nan : r == 1 ? -inf : r == 2 ? inf : static_cast<float>(rng() % 5) - 2.0f;
        // Any half bits: normals, subnormals, infinities, NaNs, -0.
        h[i] = static_cast<uint16_t>(rng() % 4 == 0 ? (rng() % 8) * 0x3C00 / 4 : rng());
      }
      std::vector<int32_t> a(width + 1, -1), b(width + 1, -1);
      ArgmaxRow_C(f.data() + 1, plane, channels, a.data(), width);
      simd.argmax_f32(f.data() + 1, plane, channels, b.data(), width);
      Check(a == b, simd.name, "argmax_f32", width, channels);
      ArgmaxRow_C(h.data() + 1, plane, channels, a.data(), width);
      simd.argmax_f16(h.data() + 1, plane, channels, b.data(), width);
      Check(a == b, simd.name, "argmax_f16", width, channels);
    }
  }
}

void TestUpsampleRows(const RowFunctions& simd) {
  for (int width : Widths()) {
    // Vertical lerp: scores over the whole 0..kScoreOne range, every kind of
    // weight split (all on one row, all on the other, in between).
    for (int wb : {0, 1, 77, 128, 255, kLerpOne}) {
      std::vector<int16_t> a(width + 1), b(width + 1);
      for (size_t i = 0; i < a.size(); ++i) {
        a[i] = static_cast<int16_t>(rng() % 4 == 0 ? kScoreOne : rng() % (kScoreOne + 1));
        b[i] = static_cast<int16_t>(rng() % 4 == 0 ? 0 : rng() % (kScoreOne + 1));
      }
      std::vector<int32_t> ra(width + 1, -1), rb(width + 1, -1);
      UpsampleVerticalRow_C(a.data() + 1, b.data() + 1, kLerpOne - wb, wb, ra.data(), width);
      simd.upsample_vertical(a.data() + 1, b.data() + 1, kLerpOne - wb, wb, rb.data(), width);
      Check(ra == rb, simd.name, "upsample_vertical", width, wb);
    }
    // int32 argmax across planes: ties (first wins) and the int32 extremes.
    for (int channels : {1, 2, 3, 8, 21, 150}) {
      const ptrdiff_t plane = width + 3;
      std::vector<int32_t> v(plane * channels + 1);
      for (int32_t& x : v) {
        const uint32_t r = rng() % 16;
        x = r == 0 ? std::numeric_limits<int32_t>::min()
            : r == 1 ? std::numeric_limits<int32_t>::max()
            : r < 8 ? static_cast<int32_t>(rng() % 4)
                    : static_cast<int32_t>(rng());
      }
      std::vector<int32_t> a(width + 1, -1), b(width + 1, -1);
      ArgmaxRow_C(v.data() + 1, plane, channels, a.data(), width);
      simd.argmax_i32(v.data() + 1, plane, channels, b.data(), width);
      Check(a == b, simd.name, "argmax_i32", width, channels);
    }
  }
}

float SpecialFloat() {
  const uint32_t r = rng() % 32;
  if (r == 0) return std::numeric_limits<float>::quiet_NaN();
  if (r == 1) return std::numeric_limits<float>::infinity();
  if (r == 2) return -std::numeric_limits<float>::infinity();
  if (r == 3) return std::numeric_limits<float>::denorm_min() * static_cast<float>(rng() % 100);
  if (r == 4) return std::numeric_limits<float>::max();
  return std::uniform_real_distribution<float>(-20.0f, 20.0f)(rng);
}

// Equal as bytes, except that any NaN equals any NaN: converters may give
// a NaN another payload (F16C and the C half conversion do), IEEE only
// promises it stays NaN.
bool SameFloats(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::memcmp(&a[i], &b[i], 4) != 0) return false;
  }
  return true;
}

void TestSmoothingRows(const RowFunctions& simd) {
  for (int width : Widths()) {
    // EMA: float32 and float16 inputs, NaN and infinities included, compared
    // as bytes (SameFloats); alpha at its ends and in between.
    for (float alpha : {0.0f, 0.3f, 0.5f, 1.0f, 0.123456789f}) {
      std::vector<float> x(width + 1), s0(width + 1);
      std::vector<uint16_t> h(width + 1);
      for (int i = 0; i <= width; ++i) {
        x[i] = SpecialFloat();
        s0[i] = SpecialFloat();
        h[i] = static_cast<uint16_t>(rng());
      }
      std::vector<float> a = s0, b = s0;
      EmaRow_C(x.data() + 1, alpha, a.data() + 1, width);
      simd.ema_f32(x.data() + 1, alpha, b.data() + 1, width);
      Check(SameFloats(a, b), simd.name, "ema_f32", width);
      a = s0, b = s0;
      EmaRow_C(h.data() + 1, alpha, a.data() + 1, width);
      simd.ema_f16(h.data() + 1, alpha, b.data() + 1, width);
      Check(SameFloats(a, b), simd.name, "ema_f16", width);
    }
    // Hysteresis: few labels (so candidates repeat), counts anywhere in
    // int32, every frame count, gaps with NaN, with and without scores.
    for (int frames : {1, 2, 3, 7}) {
      for (int with_gap = 0; with_gap < 2; ++with_gap) {
        std::vector<int32_t> x(width + 1), shown(width + 1), cand(width + 1), count(width + 1);
        std::vector<float> gap(width + 1);
        for (int i = 0; i <= width; ++i) {
          x[i] = static_cast<int32_t>(rng() % 3);
          shown[i] = static_cast<int32_t>(rng() % 3);
          cand[i] = static_cast<int32_t>(rng() % 3);
          const uint32_t r = rng() % 8;
          count[i] = r == 0   ? std::numeric_limits<int32_t>::max()
                     : r == 1 ? std::numeric_limits<int32_t>::min()
                              : static_cast<int32_t>(rng() % (frames + 2));
          gap[i] = SpecialFloat() / 10.0f;
        }
        const float* g = with_gap ? gap.data() + 1 : nullptr;
        std::vector<int32_t> s1 = shown, c1 = cand, n1 = count, s2 = shown, c2 = cand, n2 = count;
        HysteresisRow_C(x.data() + 1, g, 0.5f, frames, s1.data() + 1, c1.data() + 1, n1.data() + 1, width);
        simd.hysteresis(x.data() + 1, g, 0.5f, frames, s2.data() + 1, c2.data() + 1, n2.data() + 1, width);
        Check(s1 == s2 && c1 == c2 && n1 == n2, simd.name, "hysteresis", width, frames * 2 + with_gap);
      }
    }
  }
}

void TestBlendPattern(const RowFunctions& simd) {
  // A repeating colour (period 3 or 4, kPatternBytes long), in place too;
  // the C row equals BlendPixel, the definition of every blend.
  for (int width : Widths()) {
    for (int period : {3, 4}) {
      uint8_t color[4], alpha[4];
      std::vector<uint16_t> keep(kPatternBytes), add(kPatternBytes);
      for (int k = 0; k < period; ++k) {
        color[k] = static_cast<uint8_t>(rng());
        alpha[k] = static_cast<uint8_t>(k == 3 ? 0 : rng() % 4 == 0 ? 255 : rng());
      }
      for (int k = 0; k < kPatternBytes; ++k) {
        keep[k] = static_cast<uint16_t>(255 - alpha[k % period]);
        add[k] = static_cast<uint16_t>(color[k % period] * alpha[k % period] + 128);
      }
      const int count = width * period;
      std::vector<uint8_t> src(count + 1), a(count + 1, 7), b(count + 1, 7);
      for (uint8_t& v : src) v = static_cast<uint8_t>(rng());
      BlendPatternRow_C(src.data() + 1, keep.data(), add.data(), period, a.data() + 1, count);
      bool exact = true;
      for (int i = 0; i < count; ++i)
        exact = exact && a[i + 1] == BlendPixel(src[i + 1], color[i % period], alpha[i % period]);
      Check(exact, "scalar", "blend_pattern_is_blend_pixel", width, period);
      simd.blend_pattern(src.data() + 1, keep.data(), add.data(), period, b.data() + 1, count);
      Check(a == b, simd.name, "blend_pattern", width, period);
      std::vector<uint8_t> in_place = src;
      simd.blend_pattern(in_place.data() + 1, keep.data(), add.data(), period, in_place.data() + 1, count);
      in_place[0] = 7;
      Check(in_place == a, simd.name, "blend_pattern_in_place", width, period);
    }
  }
}

void TestShuffle(const RowFunctions& simd) {
  // Every output layout resize_image takes (any channel order, 3 or 4
  // channels, repeats too), against the C row, which is checked against
  // the definition; the byte after the row is never written.
  const std::vector<std::vector<uint8_t>> orders = {
      {0, 1, 2, 3}, {2, 1, 0, 3}, {3, 0, 1, 2}, {3, 2, 1, 0}, {0, 1, 2}, {2, 1, 0}, {1, 1, 3}, {3, 3, 3, 3}};
  for (int width : Widths()) {
    std::vector<uint8_t> src(4 * static_cast<size_t>(width) + 1);
    for (uint8_t& v : src) v = static_cast<uint8_t>(rng());
    for (const auto& order : orders) {
      const int channels = static_cast<int>(order.size());
      const size_t bytes = static_cast<size_t>(channels) * width;
      std::vector<uint8_t> a(bytes + 1, 7), b(bytes + 1, 7);
      ShuffleRow_C(src.data(), order.data(), channels, a.data(), width);
      bool exact = a[bytes] == 7;
      for (int x = 0; x < width; ++x)
        for (int c = 0; c < channels; ++c) exact = exact && a[x * channels + c] == src[4 * x + order[c]];
      Check(exact, "scalar", "shuffle_is_definition", width, channels);
      simd.shuffle(src.data(), order.data(), channels, b.data(), width);
      Check(a == b, simd.name, "shuffle", width, channels);
    }
  }
}

void TestHysteresisRule() {
  // The rule itself, on one pixel: 0 shown, 1 arrives for three frames.
  int32_t shown = 0, cand = 0, count = 0;
  const int32_t seq[] = {1, 1, 0, 1, 1, 1};
  const int32_t want[] = {0, 0, 0, 0, 0, 1};
  bool ok = true;
  for (int f = 0; f < 6; ++f) {
    HysteresisRow_C(&seq[f], nullptr, 0.0f, 3, &shown, &cand, &count, 1);
    ok = ok && shown == want[f];
  }
  const float big = 2.0f;  // a margin win flips at once
  HysteresisRow_C(&seq[2], &big, 1.5f, 3, &shown, &cand, &count, 1);
  Check(ok && shown == 0 && count == 0, "scalar", "hysteresis_rule", 6);
}

void TestHalfToFloat() {
  // Spot values whose float value is known exactly.
  const struct {
    uint16_t h;
    float f;
  } cases[] = {{0x0000, 0.0f}, {0x3C00, 1.0f}, {0xC000, -2.0f}, {0x7BFF, 65504.0f},
               {0x0001, 5.9604644775390625e-08f}, {0x03FF, 6.097555160522461e-05f},
               {0x0400, 6.103515625e-05f}, {0x3555, 0.333251953125f}};
  for (const auto& c : cases) Check(HalfToFloat(c.h) == c.f, "scalar", "half_to_float", c.h);
  Check(HalfToFloat(0x7C00) == std::numeric_limits<float>::infinity(), "scalar", "half_inf", 0);
  Check(std::isnan(HalfToFloat(0x7E00)), "scalar", "half_nan", 0);
  Check(std::signbit(HalfToFloat(0x8000)), "scalar", "half_neg_zero", 0);
}

// Alpha planes as mattes are: runs of 0 and 255 (whole SIMD steps of
// either take the copy paths) with soft values between them.
std::vector<uint8_t> MatteLikeAlpha(int n) {
  std::vector<uint8_t> a(n);
  int i = 0;
  while (i < n) {
    const int run = 1 + static_cast<int>(rng() % 40);
    const uint32_t kind = rng() % 3;
    for (int k = 0; k < run && i < n; ++k, ++i)
      a[i] = kind == 0 ? 0 : kind == 1 ? 255 : static_cast<uint8_t>(rng());
  }
  return a;
}

void TestBlendImages(const RowFunctions& simd) {
  // Two images under an alpha plane, RGB and RGBA, at odd offsets; the C
  // row equals BlendPixel (the foreground's alpha passing through), and
  // in place on either input gives the same bytes.
  for (int width : Widths()) {
    for (int channels : {3, 4}) {
      const int n = width * channels;
      std::vector<uint8_t> fg(n + 1), bg(n + 2);
      for (uint8_t& v : fg) v = static_cast<uint8_t>(rng());
      for (uint8_t& v : bg) v = static_cast<uint8_t>(rng());
      std::vector<uint8_t> alpha = MatteLikeAlpha(width + 3);
      const uint8_t* f = fg.data() + 1;
      const uint8_t* b = bg.data() + 2;
      const uint8_t* a = alpha.data() + 3 - (width % 3);
      std::vector<uint8_t> c(n + 2, 7), d(n + 2, 7);
      BlendImagesRow_C(f, b, a, channels, c.data() + 1, width);
      bool exact = c[0] == 7 && c[n + 1] == 7;
      for (int x = 0; x < width; ++x)
        for (int k = 0; k < channels; ++k) {
          const int i = x * channels + k;
          exact = exact && c[1 + i] == (k == 3 ? f[i] : BlendPixel(b[i], f[i], a[x]));
        }
      Check(exact, "scalar", "blend_images_is_blend_pixel", width, channels);
      simd.blend_images(f, b, a, channels, d.data() + 1, width);
      Check(c == d, simd.name, "blend_images", width, channels);
      std::vector<uint8_t> on_fg(fg), on_bg(bg);
      simd.blend_images(on_fg.data() + 1, b, a, channels, on_fg.data() + 1, width);
      simd.blend_images(f, on_bg.data() + 2, a, channels, on_bg.data() + 2, width);
      const bool fg_ok = std::equal(c.begin() + 1, c.begin() + 1 + n, on_fg.begin() + 1) && on_fg[0] == fg[0];
      const bool bg_ok = std::equal(c.begin() + 1, c.begin() + 1 + n, on_bg.begin() + 2) && on_bg[1] == bg[1];
      Check(fg_ok && bg_ok, simd.name, "blend_images_in_place", width, channels);
    }
  }
}

void TestBlurRows(const RowFunctions& simd) {
  for (int width : Widths()) {
    // Column sums of 1 to 257 rows (257 rows of 255 is the largest sum that
    // fits uint16) with a row stride of their own, at odd offsets.
    for (int rows : {1, 2, 7, 64, 257}) {
      const ptrdiff_t stride = width + 5 + rows % 3;
      std::vector<uint8_t> src(rows * stride + 1);
      for (uint8_t& v : src) v = static_cast<uint8_t>(rng() % 3 == 0 ? 255 : rng());
      std::vector<uint16_t> a(width + 1, 7), b(width + 1, 7);
      ColumnSumsRow_C(src.data() + 1, stride, rows, a.data(), width);
      bool exact = a[width] == 7;
      for (int i = 0; i < width; ++i) {
        uint32_t sum = 0;
        for (int r = 0; r < rows; ++r) sum += src[1 + r * stride + i];
        exact = exact && a[i] == sum;
      }
      Check(exact, "scalar", "column_sums_is_definition", width, rows);
      simd.column_sums(src.data() + 1, stride, rows, b.data(), width);
      Check(a == b, simd.name, "column_sums", width, rows);
    }
    // Block means: blocks of 1..9 and 40 pixels, sums as blocks of up to 256
    // rows make them (any u16), every pixel count's scale.
    for (int channels : {3, 4}) {
      for (int block : {1, 2, 3, 5, 8, 9, 40}) {
        const int rows = 1 + static_cast<int>(rng() % 256);
        const float scale = static_cast<float>(128.0 / (static_cast<double>(block) * rows));
        std::vector<uint16_t> sums(static_cast<size_t>(width) * block * channels + 2);
        for (uint16_t& v : sums) v = static_cast<uint16_t>(rng() % 8 == 0 ? 255 * rows : rng() % (255 * rows + 1));
        std::vector<int16_t> a(width * channels + 1, 7), b(a);
        BlockMeanRow_C(sums.data() + 1, channels, block, scale, a.data(), width);
        bool exact = a[width * channels] == 7;
        for (int j = 0; j < width && exact; ++j)
          for (int c = 0; c < channels; ++c) {
            double s = 0;
            for (int k = 0; k < block; ++k) s += sums[1 + (static_cast<size_t>(j) * block + k) * channels + c];
            exact = exact && a[j * channels + c] == static_cast<int16_t>(static_cast<float>(s) * scale + 0.5f);
          }
        Check(exact, "scalar", "block_mean_is_definition", width, block);
        simd.block_mean(sums.data() + 1, channels, block, scale, b.data(), width);
        Check(a == b, simd.name, channels == 3 ? "block_mean_rgb" : "block_mean_rgba", width, block);
      }
    }
    // Filter passes: taps as blur makes them (>= 0, summing to 2^16, even
    // count), values over 0..kBlurOne with the extremes, rows at odd offsets.
    for (int taps : {2, 4, 6, 8, 10, 12}) {
      std::vector<int16_t> coeffs(taps, 0);
      int left = 1 << 16;
      for (int k = 0; k < taps - 1; ++k) {
        const int v = static_cast<int>(rng() % (std::min(left, 32767) + 1));
        coeffs[k] = static_cast<int16_t>(v);
        left -= v;
      }
      while (left > 32767) {  // spread what is left over taps with room
        for (int k = 0; k < taps && left > 32767; ++k) {
          const int room = std::min(32767 - coeffs[k], left - 32767);
          coeffs[k] = static_cast<int16_t>(coeffs[k] + room);
          left -= room;
        }
      }
      coeffs[taps - 1] = static_cast<int16_t>(coeffs[taps - 1] + left);
      std::vector<std::vector<int16_t>> rows(taps, std::vector<int16_t>(width + 1));
      std::vector<const int16_t*> ptrs;
      for (auto& r : rows) {
        for (int16_t& v : r) v = static_cast<int16_t>(rng() % 4 == 0 ? kBlurOne : rng() % (kBlurOne + 1));
        ptrs.push_back(r.data() + 1);
      }
      std::vector<int16_t> a(width), b(width);
      TapFilterRow_C(ptrs.data(), coeffs.data(), taps, a.data(), width);
      simd.tap_filter(ptrs.data(), coeffs.data(), taps, b.data(), width);
      Check(a == b, simd.name, "tap_filter", width, taps);
    }
    // Enlargement: columns from a source row of src_w pixels (x0 anywhere,
    // weight 0 on the last pixel), then rows into bytes.
    for (int channels : {3, 4}) {
      const int src_w = 1 + static_cast<int>(rng() % (width + 2));
      std::vector<int16_t> src((src_w + 1) * channels + 3);
      for (int16_t& v : src) v = static_cast<int16_t>(rng() % 4 == 0 ? kBlurOne : rng() % (kBlurOne + 1));
      std::vector<int32_t> x0(width);
      std::vector<int16_t> wq(width + 4);
      for (int x = 0; x < width; ++x) {
        x0[x] = static_cast<int32_t>(rng() % src_w);
        const int w1 = x0[x] == src_w - 1 ? 0 : static_cast<int>(rng() % 4 == 0 ? 255 : rng() % 256);
        wq[x] = static_cast<int16_t>(w1 * 128);
      }
      std::vector<uint8_t> a(width * channels + 1, 7), b(a);
      LerpColumnsRow_C(src.data() + 1, channels, x0.data(), wq.data(), a.data(), width);
      bool exact = a[width * channels] == 7;
      for (int x = 0; x < width; ++x)
        for (int c = 0; c < channels; ++c) {
          const int32_t p = src[1 + x0[x] * channels + c], q = src[1 + (x0[x] + 1) * channels + c];
          const double v = p + std::floor(((q - p) * wq[x]) / 32768.0 + 0.5);
          exact = exact && a[x * channels + c] == static_cast<int>(std::floor(v / 128.0 + 0.5));
        }
      Check(exact, "scalar", "lerp_columns_is_definition", width, channels);
      simd.lerp_columns(src.data() + 1, channels, x0.data(), wq.data(), b.data(), width);
      Check(a == b, simd.name, channels == 3 ? "lerp_columns_rgb" : "lerp_columns_rgba", width);
    }
    for (int w6 : {0, 1, 20, 32, 63, 64}) {
      std::vector<uint8_t> ra(width + 1), rb(width + 1);
      for (size_t i = 0; i < ra.size(); ++i) {
        ra[i] = static_cast<uint8_t>(rng() % 4 == 0 ? 255 : rng());
        rb[i] = static_cast<uint8_t>(rng() % 4 == 0 ? 0 : rng());
      }
      std::vector<uint8_t> a(width + 1, 7), b(width + 1, 7);
      LerpRowsRow_C(ra.data() + 1, rb.data() + 1, w6, a.data(), width);
      bool exact = a[width] == 7;
      for (int i = 0; i < width; ++i)
        exact = exact && a[i] == static_cast<int>(std::floor((ra[1 + i] * (64 - w6) + rb[1 + i] * w6) / 64.0 + 0.5));
      Check(exact, "scalar", "lerp_rows_is_definition", width, w6);
      simd.lerp_rows(ra.data() + 1, rb.data() + 1, w6, b.data(), width);
      Check(a == b, simd.name, "lerp_rows", width, w6);
    }
  }
}

void TestMatteRows(const RowFunctions& simd) {
  const int32_t full = kScoreOne << kLerpBits;
  for (int width : Widths()) {
    for (int w1 : {0, 1, 100, 128, 255}) {
      // Rows as the horizontal pass makes them: runs of 0 and full (whole
      // SIMD steps of either take the shortcut) with values between.
      std::vector<int32_t> ra(width + 1), rb(width + 1);
      int i = 0;
      while (i <= width) {
        const int run = 1 + static_cast<int>(rng() % 70);
        const uint32_t kind = rng() % 3;
        for (int k = 0; k < run && i <= width; ++k, ++i) {
          const int32_t v = kind == 0 ? 0 : kind == 1 ? full : static_cast<int32_t>(rng() % (full + 1));
          ra[i] = v;
          rb[i] = rng() % 8 == 0 ? static_cast<int32_t>(rng() % (full + 1)) : v;
        }
      }
      std::vector<uint8_t> a(width + 1, 7), b(width + 1, 7);
      MatteRowsRow_C(ra.data() + 1, rb.data() + 1, w1, a.data(), width);
      bool exact = a[width] == 7;
      const int64_t d = int64_t{kScoreOne} << 16;
      for (int x = 0; x < width; ++x) {
        const int64_t v = int64_t{ra[1 + x]} * (kLerpOne - w1) + int64_t{rb[1 + x]} * w1;
        exact = exact && a[x] == (255 * v + d / 2) / d;
      }
      Check(exact, "scalar", "matte_rows_is_definition", width, w1);
      simd.matte_rows(ra.data() + 1, rb.data() + 1, w1, b.data(), width);
      Check(a == b, simd.name, "matte_rows", width, w1);
    }
  }
}

void TestMatteScalar() {
  // MatteAlpha is round half up of 255 v / D: at the ends, at every exact
  // half (v = (2k + 1) D / 510 has none but D / 2) and around it, and at
  // random values (the whole range was checked once, exhaustively).
  const int64_t d = int64_t{kScoreOne} << 16;
  bool ok = MatteAlpha(0) == 0 && MatteAlpha(static_cast<uint32_t>(d)) == 255 && MatteAlpha(static_cast<uint32_t>(d / 2)) == 128 &&
            MatteAlpha(static_cast<uint32_t>(d / 2 - 1)) == 127;
  for (int k = 0; k < 255; ++k) {
    const int64_t edge = ((2 * k + 1) * d + 509) / 510;  // the first v rounding to k + 1
    ok = ok && MatteAlpha(static_cast<uint32_t>(edge)) == k + 1 && MatteAlpha(static_cast<uint32_t>(edge - 1)) == k;
  }
  for (int n = 0; n < 200000; ++n) {
    const int64_t v = static_cast<int64_t>(rng() % (d + 1));
    ok = ok && MatteAlpha(static_cast<uint32_t>(v)) == (255 * v + d / 2) / d;
  }
  Check(ok, "scalar", "matte_alpha", 0);
  // The columns row (C in every table): q0 (256 - w) + q1 w.
  std::vector<int16_t> q = {0, kScoreOne, 1234, 1234, 0};
  const int32_t x0[] = {0, 1, 2, 3, 3};
  const int16_t w1[] = {128, 1, 255, 0, 0};
  int32_t out[5];
  MatteColumnsRow_C(q.data(), x0, w1, out, 5);
  Check(out[0] == kScoreOne * 128 && out[1] == kScoreOne * 255 + 1234 && out[2] == 1234 * 256 &&
            out[3] == 1234 * 256 && out[4] == 1234 * 256,
        "scalar", "matte_columns", 5);
}

void TestRefineRows(const RowFunctions& simd) {
  for (int width : Widths()) {
    for (int channels : {3, 4}) {
      for (int offset = 0; offset < 2; ++offset) {
        // Exactly the row's bytes (the sanitizers catch a read past it).
        std::vector<uint8_t> src(static_cast<size_t>(width) * channels + offset);
        for (uint8_t& v : src) v = static_cast<uint8_t>(rng() % 5 == 0 ? 255 * (rng() % 2) : rng());
        const uint8_t* px = src.data() + offset;
        std::vector<uint8_t> a(width + 1, 7), b(width + 1, 7);
        LumaRow_C(px, channels, a.data(), width);
        bool exact = a[width] == 7;
        for (int x = 0; x < width; ++x) {
          const uint8_t* p = px + x * channels;
          exact = exact && a[x] == static_cast<int>(std::floor((77 * p[0] + 150 * p[1] + 29 * p[2]) / 256.0 + 0.5));
        }
        Check(exact, "scalar", "luma_is_definition", width, channels);
        simd.luma(px, channels, b.data(), width);
        Check(a == b, simd.name, "luma", width, channels * 10 + offset);
      }
    }
    for (int wy : {0, 1, 100, 128, 255, 256}) {
      // Coefficients over their whole range, and runs of a flat matte's
      // (A = 0, b = 0 or 255 << 4) with a photo's slopes between.
      std::vector<int32_t> a0(width + 1), a1(width + 1), b0(width + 1), b1(width + 1);
      std::vector<uint8_t> y(width + 1);
      for (int x = 0; x <= width; ++x) {
        const uint32_t kind = rng() % 4;
        const auto any_a = [] { return static_cast<int32_t>(rng() % (2 * kRefineMaxA + 1)) - kRefineMaxA; };
        const auto any_b = [] { return static_cast<int32_t>(rng() % (1 << 21)) - (1 << 20) + 1; };
        a0[x] = kind == 0 ? 0 : kind == 1 ? any_a() : static_cast<int32_t>(rng() % 8192) - 4096;
        a1[x] = rng() % 3 == 0 ? a0[x] : kind == 1 ? any_a() : static_cast<int32_t>(rng() % 8192) - 4096;
        b0[x] = kind == 0 ? (rng() % 2 ? 255 << 4 : 0) : kind == 1 ? any_b() : static_cast<int32_t>(rng() % 8000) - 2000;
        b1[x] = rng() % 3 == 0 ? b0[x] : kind == 1 ? any_b() : static_cast<int32_t>(rng() % 8000) - 2000;
        y[x] = static_cast<uint8_t>(rng());
      }
      std::vector<uint8_t> a(width + 1, 7), b(width + 1, 7);
      RefineApplyRow_C(y.data() + 1, a0.data() + 1, a1.data() + 1, b0.data() + 1, b1.data() + 1, wy, a.data(), width);
      bool exact = a[width] == 7;
      for (int x = 0; x < width; ++x) {
        const int64_t fa = int64_t{a0[1 + x]} * 256 + int64_t{a1[1 + x] - a0[1 + x]} * wy + 128;
        const int64_t fb = int64_t{b0[1 + x]} * 256 + int64_t{b1[1 + x] - b0[1 + x]} * wy + 128;
        const auto floor_div = [](int64_t n, int64_t d) { return n / d - (n % d != 0 && n < 0 ? 1 : 0); };
        const int64_t v = floor_div(floor_div(fa, 256) * y[1 + x] + floor_div(fb, 256) * 256 + 2048, 4096);
        exact = exact && a[x] == std::clamp<int64_t>(v, 0, 255);
      }
      Check(exact, "scalar", "refine_apply_is_definition", width, wy);
      simd.refine_apply(y.data() + 1, a0.data() + 1, a1.data() + 1, b0.data() + 1, b1.data() + 1, wy, b.data(), width);
      Check(a == b, simd.name, "refine_apply", width, wy);
    }
  }
}

}  // namespace
}  // namespace coreseg

int main() {
  using namespace coreseg;
  const std::vector<std::string> backends = AvailableBackends();
  std::string list;
  for (const std::string& b : backends) list += " " + b;
  std::printf("backends on this CPU:%s\n", list.c_str());
  if (backends.size() < 2) {
    std::printf("no SIMD backend to test on this CPU\n");
    return 1;
  }
  TestHalfToFloat();
  TestHysteresisRule();
  TestMatteScalar();
  for (const std::string& b : backends) {
    if (b == "scalar") continue;
    const RowFunctions& simd = *RowsByName(b);
    const int before = failed;
    TestLabelRows<uint8_t>(simd, "u8");
    TestLabelRows<uint16_t>(simd, "u16");
    TestLabelRows<int32_t>(simd, "i32");
    TestBlend(simd);
    TestResample(simd);
    TestArgmax(simd);
    TestUpsampleRows(simd);
    TestSmoothingRows(simd);
    TestBlendPattern(simd);
    TestBlendPixels(simd);
    TestShuffle(simd);
    TestBlendImages(simd);
    TestBlurRows(simd);
    TestMatteRows(simd);
    TestRefineRows(simd);
    std::printf("%s: %s\n", b.c_str(), failed == before ? "all rows match C" : "MISMATCH");
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
