// Boundary metrics: BoundaryCounts (Boundary IoU, boundary F-score), every
// class of a label map at once: a few passes over the maps whatever the
// number of classes, and about log2(distance) passes over bit rows.
//
// The paper's band of class c (Cheng et al. 2021, boundary-iou-api's
// mask_to_boundary: the mask minus its erosion by a 3x3 square d times,
// the image padded with zeros) is the set of pixels p of class c whose
// (2d+1)^2 square S_d(p) holds a pixel of another label or outside the
// image. Call E the pixels whose 3x3 square does (the 1-pixel contours of
// every class, the image border included). For d >= 1, S_d(p) holds such a
// pixel exactly when S_{d-1}(p) holds a pixel of E: the nearest differing
// pixel q at distance k has a neighbour on the way to p, at distance k - 1,
// of p's label, and that neighbour is in E; conversely a pixel of E within
// d - 1 has its differing neighbour within d, and one of the two differs
// from p. So every class's band is one binary dilation of E by a square,
// done on bit rows: along each row and then across rows, by doubling
// shifts (log d word passes).
//
// The F-score matches a contour pixel p of class c in one map with a
// contour pixel of class c in the other within S_t(p) (t = tolerance).
// When the other map has c at p itself, such a pixel exists exactly when
// p is within t of the other map's E (the nearest E pixel is of class c,
// by the argument above), a test of the same dilation with radius t.
// Otherwise it exists exactly when c occurs in the other map within
// S_t(p) (walking from that pixel towards p crosses a contour pixel of c
// inside the square), which per-tile class bit sets mostly settle, and
// otherwise a binary search per row in the other map's contour pixels,
// kept per row sorted by (class, x).
//
// The band counts are popcounts over runs of equal (gt, pred) labels; only
// contour pixels are visited one by one.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {
namespace {

constexpr uint8_t kEdge = 1;  // EdgeRow's mark: the pixel is in E (a 1-pixel contour)

// An array left uninitialised: every element is written before it is read
// (zeroing a map-sized vector costs as much as a pass).
template <typename T>
class Buffer {
 public:
  void Reset(size_t n) { data_.reset(new T[n]); }
  void Free() { data_.reset(); }
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  T& operator[](int64_t i) { return data_[static_cast<size_t>(i)]; }
  const T& operator[](int64_t i) const { return data_[static_cast<size_t>(i)]; }

 private:
  std::unique_ptr<T[]> data_;
};

// One label map's working state: labels (height x width, packed) and bit
// rows (height x words, bit i of word k is column 64 k + i; bits past the
// width are 0).
struct Plane {
  Buffer<int32_t> labels;
  Buffer<uint64_t> edge;  // E: the 1-pixel contours
  Buffer<uint64_t> band;  // within distance - 1 of E: in its class's boundary band
  Buffer<uint64_t> near;  // within tolerance of E
  // Pixels of E with a class in [0, num_classes), per row (offsets), each
  // as class << 32 | x, sorted.
  std::vector<int64_t> offsets;
  Buffer<uint64_t> keys;
};

// The first invalid value in raster order (gt before pred within a pixel),
// whichever thread finds it: the error does not depend on timing.
class FirstBad {
 public:
  void Record(int64_t position, int which, int64_t value) {
    std::lock_guard<std::mutex> lock(mu_);
    if (position < position_ || (position == position_ && which < which_))
      position_ = position, which_ = which, value_ = value;
  }
  bool Found() const { return position_ != INT64_MAX; }
  int which() const { return which_; }
  int64_t value() const { return value_; }

 private:
  std::mutex mu_;
  int64_t position_ = INT64_MAX;
  int which_ = 0;
  int64_t value_ = 0;
};

struct Classes {
  int64_t count, ignore;
  bool use_ignore;
  bool Valid(int64_t v) const { return (v >= 0 && v < count) || (use_ignore && v == ignore); }
  bool IsClass(int64_t v) const { return v >= 0 && v < count; }
};

// Whether a row of labels holds a value that is neither a class nor the
// ignore value; branch-free, so it vectorises.
bool RowHasBad(const int32_t* __restrict row, int64_t w, uint32_t count, int32_t ignore, bool use_ignore) {
  uint32_t bad = 0;
  for (int64_t x = 0; x < w; ++x) {
    const uint32_t v = static_cast<uint32_t>(row[x]);
    bad |= static_cast<uint32_t>(v >= count) & ~static_cast<uint32_t>(use_ignore & (row[x] == ignore));
  }
  return bad != 0;
}

// Copies both maps to packed int32 (every label type fits) and checks
// their values.
void Load(const LabelMap& gt, const LabelMap& pred, const Classes& classes, Plane* g, Plane* p, FirstBad* bad) {
  const int64_t w = gt.width;
  // An ignore value no int32 can hold matches no label.
  const bool use_ignore = classes.use_ignore && classes.ignore >= INT32_MIN && classes.ignore <= INT32_MAX;
  const int32_t ignore = use_ignore ? static_cast<int32_t>(classes.ignore) : 0;
  const uint32_t count = static_cast<uint32_t>(classes.count);
  ParallelFor(gt.height, RowGrain(w), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      int32_t* rows[2] = {g->labels.data() + y * w, p->labels.data() + y * w};
      const LabelMap* maps[2] = {&gt, &pred};
      for (int k = 0; k < 2; ++k) {
        DispatchLabelType(maps[k]->type, [&](auto t) {
          const auto* src = LabelRow<decltype(t)>(*maps[k], y);
          int32_t* dst = rows[k];
          for (int64_t x = 0; x < w; ++x) dst[x] = static_cast<int32_t>(src[x]);
        });
      }
      if (!RowHasBad(rows[0], w, count, ignore, use_ignore) && !RowHasBad(rows[1], w, count, ignore, use_ignore))
        continue;
      for (int64_t x = 0; x < w; ++x) {
        for (int k = 0; k < 2; ++k) {
          if (!classes.Valid(rows[k][x])) return bad->Record(y * w + x, k, rows[k][x]);
        }
      }
    }
  });
}

// flags = kEdge where a pixel of row `mid` (not at either end) differs from
// one of its 8 neighbours. Plain pointers and counts: the loop vectorises.
void EdgeRow(const int32_t* __restrict up, const int32_t* __restrict mid, const int32_t* __restrict down,
             int64_t w, uint8_t* __restrict flags) {
  flags[0] = flags[w - 1] = kEdge;
  for (int64_t x = 1; x < w - 1; ++x) {  // xor-or: one test per pixel
    const int32_t v = mid[x];
    const int32_t differs = (up[x - 1] ^ v) | (up[x] ^ v) | (up[x + 1] ^ v) | (mid[x - 1] ^ v) | (mid[x + 1] ^ v) |
                            (down[x - 1] ^ v) | (down[x] ^ v) | (down[x + 1] ^ v);
    flags[x] = static_cast<uint8_t>(differs != 0);  // kEdge
  }
}

int64_t Words(int64_t w) { return (w + 63) / 64; }

bool Bit(const uint64_t* row, int64_t x) { return (row[x >> 6] >> (x & 63)) & 1; }

// The bits past the width cleared.
void ClearTail(uint64_t* row, int64_t w) {
  if (w & 63) row[Words(w) - 1] &= (uint64_t{1} << (w & 63)) - 1;
}

// E as bit rows, row by row.
void FindEdges(Plane* m, int64_t w, int64_t h) {
  const int64_t nw = Words(w);
  m->edge.Reset(static_cast<size_t>(h * nw));
  ParallelFor(h, RowGrain(w), [m, w, h, nw](int64_t y0, int64_t y1) {
    std::vector<uint8_t> flags(static_cast<size_t>(64 * nw), 0);  // past the width: stays 0
    for (int64_t y = y0; y < y1; ++y) {
      uint64_t* bits = m->edge.data() + y * nw;
      if (y == 0 || y == h - 1 || w <= 2) {
        std::fill(bits, bits + nw, ~uint64_t{0});
      } else {
        const int32_t* mid = m->labels.data() + y * w;
        EdgeRow(mid - w, mid, mid + w, w, flags.data());
        static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the packing below reads bytes little-endian");
        for (int64_t k = 0; k < nw; ++k) {  // 8 bytes of 0/1 to 8 bits by one multiply
          uint64_t word = 0;
          for (int j = 0; j < 8; ++j) {
            uint64_t v;
            std::memcpy(&v, flags.data() + 64 * k + 8 * j, 8);
            word |= ((v * 0x0102040810204080ull) >> 56) << (8 * j);
          }
          bits[k] = word;
        }
      }
      ClearTail(bits, w);
    }
  });
}

// row[x] |= row[x - s] (up) or row[x + s] (down) for every x, in place:
// words are visited so that each reads words not yet changed.
void OrShiftedUp(uint64_t* row, int64_t nw, int64_t s) {
  const int64_t q = s >> 6, b = s & 63;
  for (int64_t k = nw - 1; k >= q; --k) {
    uint64_t v = row[k - q] << b;
    if (b && k - q - 1 >= 0) v |= row[k - q - 1] >> (64 - b);
    row[k] |= v;
  }
}

void OrShiftedDown(uint64_t* row, int64_t nw, int64_t s) {
  const int64_t q = s >> 6, b = s & 63;
  for (int64_t k = 0; k + q < nw; ++k) {
    uint64_t v = row[k + q] >> b;
    if (b && k + q + 1 < nw) v |= row[k + q + 1] << (64 - b);
    row[k] |= v;
  }
}

// out = E dilated by the square of radius r (r >= 0): along rows, then
// across them. Each step widens the reach k by j <= k + 1 (the shifted
// copies still overlap), so r takes about log2(r) steps.
void Dilate(const Plane& m, int64_t r, int64_t w, int64_t h, Buffer<uint64_t>* out) {
  const int64_t nw = Words(w);
  out->Reset(static_cast<size_t>(h * nw));
  uint64_t* bits = out->data();
  std::copy(m.edge.data(), m.edge.data() + h * nw, bits);
  ParallelFor(h, std::max<int64_t>(1, RowGrain(w) / 8), [=](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      uint64_t* row = bits + y * nw;
      for (int64_t k = 0, j; k < r; k += j) {
        j = std::min(k + 1, r - k);
        OrShiftedUp(row, nw, j);
        OrShiftedDown(row, nw, j);
      }
      ClearTail(row, w);
    }
  });
  // Across rows: the same steps with rows for bits, row y from row y -/+ j.
  for (int64_t k = 0, j; k < r; k += j) {
    j = std::min(k + 1, r - k);
    for (int64_t y = h - 1; y >= j; --y) {
      uint64_t* dst = bits + y * nw;
      const uint64_t* src = bits + (y - j) * nw;
      for (int64_t i = 0; i < nw; ++i) dst[i] |= src[i];
    }
    for (int64_t y = 0; y + j < h; ++y) {
      uint64_t* dst = bits + y * nw;
      const uint64_t* src = bits + (y + j) * nw;
      for (int64_t i = 0; i < nw; ++i) dst[i] |= src[i];
    }
  }
}

// Calls f(x) for each set bit of the row, left to right.
template <typename F>
void ForEachBit(const uint64_t* row, int64_t nw, F&& f) {
  for (int64_t k = 0; k < nw; ++k) {
    for (uint64_t word = row[k]; word != 0; word &= word - 1) f(64 * k + __builtin_ctzll(word));
  }
}

// The contour pixels of each row, by class then x.
void ListEdges(Plane* m, const Classes& classes, int64_t w, int64_t h) {
  const int64_t nw = Words(w);
  m->offsets.assign(static_cast<size_t>(h + 1), 0);
  const uint32_t count = static_cast<uint32_t>(classes.count);
  ParallelFor(h, RowGrain(w), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const int32_t* labels = m->labels.data() + y * w;
      int64_t n = 0;
      ForEachBit(m->edge.data() + y * nw, nw, [&](int64_t x) { n += static_cast<uint32_t>(labels[x]) < count; });
      m->offsets[y + 1] = n;
    }
  });
  for (int64_t y = 0; y < h; ++y) m->offsets[y + 1] += m->offsets[y];
  m->keys.Reset(static_cast<size_t>(std::max<int64_t>(1, m->offsets[h])));
  ParallelFor(h, RowGrain(w), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const int32_t* labels = m->labels.data() + y * w;
      uint64_t* out = m->keys.data() + m->offsets[y];
      uint64_t* end = out;
      bool sorted = true;
      ForEachBit(m->edge.data() + y * nw, nw, [&](int64_t x) {
        if (static_cast<uint32_t>(labels[x]) >= count) return;
        const uint64_t key = (static_cast<uint64_t>(labels[x]) << 32) | static_cast<uint64_t>(x);
        sorted &= end == out || end[-1] < key;
        *end++ = key;
      });
      if (!sorted) std::sort(out, end);
    }
  });
}

// Whether the map has a contour pixel of class c within Chebyshev distance
// t of (x, y): a binary search in each row, nearest rows first.
bool ContourWithin(const Plane& m, int64_t c, int64_t x, int64_t y, int64_t t, int64_t w, int64_t h) {
  const uint64_t base = static_cast<uint64_t>(c) << 32;
  const uint64_t lo = base | static_cast<uint64_t>(std::max<int64_t>(0, x - t));
  const uint64_t hi = base | static_cast<uint64_t>(std::min<int64_t>(w - 1, x + t));
  auto in_row = [&](int64_t row) {
    const uint64_t* begin = m.keys.data() + m.offsets[row];
    const uint64_t* end = m.keys.data() + m.offsets[row + 1];
    const uint64_t* it = std::lower_bound(begin, end, lo);
    return it != end && *it <= hi;
  };
  if (in_row(y)) return true;
  for (int64_t k = 1; k <= t; ++k) {
    const bool above = y - k >= 0, below = y + k < h;
    if (!above && !below) break;
    if ((above && in_row(y - k)) || (below && in_row(y + k))) return true;
  }
  return false;
}

// The classes whose contour passes through each square tile of a map, as
// bit sets: most searches are settled by a few tiles (a tile inside the
// square that has the class, or no tile touching it that has), the rest
// by ContourWithin.
class Tiles {
 public:
  Tiles(const Plane& m, const Classes& classes, int64_t w, int64_t h, int64_t tolerance)
      : words_((classes.count + 63) / 64), side_(std::max<int64_t>(8, tolerance)) {
    // At most 32 MiB of bits (many classes on a large map: coarser tiles).
    while (Tiles1D(w) * Tiles1D(h) * words_ > (int64_t{1} << 22)) side_ *= 2;
    nx_ = Tiles1D(w);
    bits_.assign(static_cast<size_t>(nx_ * Tiles1D(h) * words_), 0);
    ParallelFor(Tiles1D(h), 1, [&](int64_t t0, int64_t t1) {
      for (int64_t y = t0 * side_; y < std::min(h, t1 * side_); ++y) {
        uint64_t* tiles = &bits_[static_cast<size_t>((y / side_) * nx_ * words_)];
        for (int64_t i = m.offsets[y]; i < m.offsets[y + 1]; ++i) {
          const uint64_t key = m.keys[i];
          const uint64_t c = key >> 32, x = key & 0xffffffffu;
          tiles[static_cast<int64_t>(x) / side_ * words_ + static_cast<int64_t>(c >> 6)] |= uint64_t{1} << (c & 63);
        }
      }
    });
  }

  // Whether the map has a contour pixel of class c within Chebyshev
  // distance t of (x, y), for a pixel not of class c in this map (then one
  // exists exactly when the class does: see the top of the file).
  bool Within(const Plane& m, int64_t c, int64_t x, int64_t y, int64_t t, int64_t w, int64_t h) const {
    const int64_t xa = std::max<int64_t>(0, x - t), xb = std::min(w - 1, x + t);
    const int64_t ya = std::max<int64_t>(0, y - t), yb = std::min(h - 1, y + t);
    const uint64_t bit = uint64_t{1} << (c & 63);
    bool maybe = false;
    for (int64_t ty = ya / side_; ty <= yb / side_; ++ty) {
      const bool rows_inside = ty * side_ >= ya && std::min(h, (ty + 1) * side_) - 1 <= yb;
      for (int64_t tx = xa / side_; tx <= xb / side_; ++tx) {
        if (!(bits_[static_cast<size_t>((ty * nx_ + tx) * words_ + (c >> 6))] & bit)) continue;
        if (rows_inside && tx * side_ >= xa && std::min(w, (tx + 1) * side_) - 1 <= xb) return true;
        maybe = true;
      }
    }
    return maybe && ContourWithin(m, c, x, y, t, w, h);
  }

 private:
  int64_t Tiles1D(int64_t pixels) const { return (pixels + side_ - 1) / side_; }
  int64_t words_, side_, nx_ = 0;
  std::vector<uint64_t> bits_;
};

// Set bits of a (and of b, if given) in columns [x0, x1).
int64_t PopRange(const uint64_t* a, const uint64_t* b, int64_t x0, int64_t x1) {
  int64_t total = 0;
  for (int64_t k = x0 >> 6; k <= (x1 - 1) >> 6; ++k) {
    uint64_t word = b != nullptr ? a[k] & b[k] : a[k];
    if (k == x0 >> 6) word &= ~uint64_t{0} << (x0 & 63);
    if (k == (x1 - 1) >> 6 && (x1 & 63)) word &= (uint64_t{1} << (x1 & 63)) - 1;
    total += __builtin_popcountll(word);
  }
  return total;
}

// The counts: band pixels by runs of equal (gt, pred) labels, contour
// pixels one by one.
void Count(const Plane& g, const Plane& p, const Classes& classes, int64_t tolerance, int64_t w, int64_t h,
           int64_t* out) {
  constexpr int64_t K = kBoundaryColumns;
  const Tiles g_tiles(g, classes, w, h, tolerance), p_tiles(p, classes, w, h, tolerance);
  const int64_t n = classes.count, nw = Words(w);
  const bool use_ignore = classes.use_ignore && classes.ignore >= INT32_MIN && classes.ignore <= INT32_MAX;
  const int32_t ignore = use_ignore ? static_cast<int32_t>(classes.ignore) : 0;
  std::mutex merge;
  ParallelFor(h, RowGrain(w), [&](int64_t y0, int64_t y1) {
    std::vector<int64_t> table(static_cast<size_t>(n * K), 0);
    std::vector<uint64_t> contour(static_cast<size_t>(nw));
    for (int64_t y = y0; y < y1; ++y) {
      const int32_t* lg = g.labels.data() + y * w;
      const int32_t* lp = p.labels.data() + y * w;
      const uint64_t* band_g = g.band.data() + y * nw;
      const uint64_t* band_p = p.band.data() + y * nw;
      for (int64_t x = 0, x1; x < w; x = x1) {
        const int32_t cg = lg[x], cp = lp[x];
        for (x1 = x + 1; x1 < w && lg[x1] == cg && lp[x1] == cp;) ++x1;
        if (use_ignore && cg == ignore) continue;
        table[cg * K] += PopRange(band_g, nullptr, x, x1);
        if (static_cast<uint32_t>(cp) >= static_cast<uint32_t>(n)) continue;  // ignore_index: no class
        table[cp * K + 1] += PopRange(band_p, nullptr, x, x1);
        if (cp == cg) table[cg * K + 2] += PopRange(band_g, band_p, x, x1);
      }
      const uint64_t* edge_g = g.edge.data() + y * nw;
      const uint64_t* edge_p = p.edge.data() + y * nw;
      const uint64_t* near_g = g.near.data() + y * nw;
      const uint64_t* near_p = p.near.data() + y * nw;
      for (int64_t k = 0; k < nw; ++k) contour[static_cast<size_t>(k)] = edge_g[k] | edge_p[k];
      ForEachBit(contour.data(), nw, [&](int64_t x) {
        const int32_t cg = lg[x], cp = lp[x];
        if (use_ignore && cg == ignore) return;
        if (Bit(edge_g, x)) {
          int64_t* rg = &table[cg * K];
          ++rg[5];
          rg[6] += cp == cg ? Bit(near_p, x) : p_tiles.Within(p, cg, x, y, tolerance, w, h);
        }
        if (Bit(edge_p, x) && static_cast<uint32_t>(cp) < static_cast<uint32_t>(n)) {
          int64_t* rp = &table[cp * K];
          ++rp[3];
          rp[4] += cp == cg ? Bit(near_g, x) : g_tiles.Within(g, cp, x, y, tolerance, w, h);
        }
      });
    }
    std::lock_guard<std::mutex> lock(merge);
    for (size_t j = 0; j < table.size(); ++j) out[j] += table[j];
  });
}

}  // namespace

bool BoundaryCounts(const LabelMap& gt, const LabelMap& pred, int64_t num_classes, int64_t distance,
                    int64_t tolerance, int64_t ignore_index, bool use_ignore, int64_t* out, int* bad_array,
                    int64_t* bad_value) {
  std::fill(out, out + num_classes * kBoundaryColumns, 0);
  const int64_t w = gt.width, h = gt.height;
  if (w == 0 || h == 0) return true;
  const Classes classes{num_classes, ignore_index, use_ignore};
  const size_t size = static_cast<size_t>(w * h);
  Plane g, p;
  g.labels.Reset(size);
  p.labels.Reset(size);
  FirstBad bad;
  Load(gt, pred, classes, &g, &p, &bad);
  if (bad.Found()) {
    *bad_array = bad.which(), *bad_value = bad.value();
    return false;
  }
  // Beyond the larger side every radius covers the whole image.
  const int64_t limit = std::max(w, h);
  distance = std::min(distance, limit);
  tolerance = std::min(tolerance, limit);
  for (Plane* m : {&g, &p}) {
    FindEdges(m, w, h);
    if (distance >= 1) {
      Dilate(*m, distance - 1, w, h, &m->band);
    } else {  // an empty band
      m->band.Reset(static_cast<size_t>(h * Words(w)));
      std::fill(m->band.data(), m->band.data() + h * Words(w), 0);
    }
    Dilate(*m, tolerance, w, h, &m->near);
    ListEdges(m, classes, w, h);
  }
  Count(g, p, classes, tolerance, w, h, out);
  return true;
}

}  // namespace coreseg
