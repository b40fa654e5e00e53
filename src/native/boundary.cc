// Boundary metrics: BoundaryCounts (Boundary IoU, boundary F-score), every
// class of a label map at once, in a fixed number of passes whatever the
// distance and the number of classes.
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
// from p. So every class's band is one binary dilation of E, which is
// separable: a row sweep gives each pixel's distance to E along its row
// (`run`), a column sweep whether a row within r has run <= r.
//
// The F-score matches a contour pixel p of class c in one map with a
// contour pixel of class c in the other within S_t(p) (t = tolerance).
// When the other map has c at p itself, such a pixel exists exactly when
// p is within t of the other map's E (the nearest E pixel is of class c,
// by the argument above), a test of the same dilation with radius t.
// Otherwise it exists exactly when c occurs in the other map within
// S_t(p) (walking from that pixel towards p crosses a contour pixel of c
// inside the square), which is looked up in the other map's contour
// pixels, kept per row sorted by (class, x): a binary search per row
// within t, nearest rows first.
#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>

#include "kernels.h"
#include "label_rows.h"
#include "thread_pool.h"

namespace coreseg {
namespace {

constexpr uint8_t kEdge = 1;  // the pixel is in E (a 1-pixel contour)
constexpr uint8_t kBand = 2;  // within distance - 1 of E: in its class's boundary band
constexpr uint8_t kNear = 4;  // within tolerance of E

// One label map's working state, all height x width, packed.
struct Plane {
  std::vector<int32_t> labels;
  std::vector<uint8_t> flags;
  std::vector<int32_t> run;  // distance along the row to the nearest pixel of E
  // Pixels of E with a class in [0, num_classes), per row (offsets), each
  // as class << 32 | x, sorted.
  std::vector<int64_t> offsets;
  std::vector<uint64_t> keys;
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

// Copies both maps to packed int32 (every label type fits) and checks
// their values.
void Load(const LabelMap& gt, const LabelMap& pred, const Classes& classes, Plane* g, Plane* p, FirstBad* bad) {
  const int64_t w = gt.width;
  ParallelFor(gt.height, RowGrain(w), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      int which = 0;
      for (const LabelMap* map : {&gt, &pred}) {
        int32_t* dst = (which == 0 ? g : p)->labels.data() + y * w;
        DispatchLabelType(map->type, [&](auto t) {
          const auto* src = LabelRow<decltype(t)>(*map, y);
          for (int64_t x = 0; x < w; ++x) dst[x] = static_cast<int32_t>(src[x]);
        });
        ++which;
      }
      const int32_t* rg = g->labels.data() + y * w;
      const int32_t* rp = p->labels.data() + y * w;
      for (int64_t x = 0; x < w; ++x) {
        if (!classes.Valid(rg[x])) {
          bad->Record(y * w + x, 0, rg[x]);
          return;
        }
        if (!classes.Valid(rp[x])) {
          bad->Record(y * w + x, 1, rp[x]);
          return;
        }
      }
    }
  });
}

// E and `run`, row by row.
void FindEdges(Plane* m, int64_t w, int64_t h) {
  ParallelFor(h, RowGrain(w), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const int32_t* mid = m->labels.data() + y * w;
      uint8_t* flags = m->flags.data() + y * w;
      if (y == 0 || y == h - 1 || w <= 2) {
        std::fill(flags, flags + w, kEdge);
      } else {
        const int32_t* up = mid - w;
        const int32_t* down = mid + w;
        flags[0] = flags[w - 1] = kEdge;
        for (int64_t x = 1; x < w - 1; ++x) {
          const int32_t v = mid[x];
          const bool differs = (up[x - 1] != v) | (up[x] != v) | (up[x + 1] != v) | (mid[x - 1] != v) |
                               (mid[x + 1] != v) | (down[x - 1] != v) | (down[x] != v) | (down[x + 1] != v);
          flags[x] = differs ? kEdge : 0;
        }
      }
      // Both ends of every row are in E, so every distance is below w.
      int32_t* run = m->run.data() + y * w;
      int32_t d = 0;
      for (int64_t x = 0; x < w; ++x) run[x] = d = flags[x] ? 0 : d + 1;
      for (int64_t x = w - 1; x >= 0; --x) {
        d = flags[x] ? 0 : d + 1;
        run[x] = std::min(run[x], d);
      }
    }
  });
}

// Sets `bit` where a pixel of E lies within Chebyshev distance `radius`:
// some row within radius has run <= radius. Column bands, one sweep down
// and one up each, rows as vectors.
void MarkWithin(Plane* m, int64_t w, int64_t h, int64_t radius, uint8_t bit) {
  if (radius < 0) return;
  const int64_t grain = std::max<int64_t>(16, (int64_t{1} << 18) / std::max<int64_t>(1, h));
  ParallelFor(w, grain, [&](int64_t x0, int64_t x1) {
    const int64_t n = x1 - x0;
    std::vector<int64_t> last(static_cast<size_t>(n), -(int64_t{1} << 40));
    for (int64_t y = 0; y < h; ++y) {
      const int32_t* run = m->run.data() + y * w + x0;
      uint8_t* flags = m->flags.data() + y * w + x0;
      for (int64_t i = 0; i < n; ++i) {
        if (run[i] <= radius) last[i] = y;
        if (y - last[i] <= radius) flags[i] |= bit;
      }
    }
    std::fill(last.begin(), last.end(), int64_t{1} << 40);
    for (int64_t y = h - 1; y >= 0; --y) {
      const int32_t* run = m->run.data() + y * w + x0;
      uint8_t* flags = m->flags.data() + y * w + x0;
      for (int64_t i = 0; i < n; ++i) {
        if (run[i] <= radius) last[i] = y;
        if (last[i] - y <= radius) flags[i] |= bit;
      }
    }
  });
}

// The contour pixels of each row, by class then x.
void ListEdges(Plane* m, const Classes& classes, int64_t w, int64_t h) {
  m->offsets.assign(static_cast<size_t>(h + 1), 0);
  ParallelFor(h, RowGrain(w), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      int64_t count = 0;
      for (int64_t x = 0; x < w; ++x)
        count += (m->flags[y * w + x] & kEdge) && classes.IsClass(m->labels[y * w + x]);
      m->offsets[y + 1] = count;
    }
  });
  for (int64_t y = 0; y < h; ++y) m->offsets[y + 1] += m->offsets[y];
  m->keys.resize(static_cast<size_t>(m->offsets[h]));
  ParallelFor(h, RowGrain(w), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      uint64_t* out = m->keys.data() + m->offsets[y];
      uint64_t* end = out;
      for (int64_t x = 0; x < w; ++x) {
        const int32_t v = m->labels[y * w + x];
        if ((m->flags[y * w + x] & kEdge) && classes.IsClass(v))
          *end++ = (static_cast<uint64_t>(v) << 32) | static_cast<uint64_t>(x);
      }
      std::sort(out, end);
    }
  });
}

// Whether the map has a contour pixel of class c within Chebyshev distance
// t of (x, y): rows nearest first.
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

void Count(const Plane& g, const Plane& p, const Classes& classes, int64_t tolerance, int64_t w, int64_t h,
           int64_t* out) {
  constexpr int64_t K = kBoundaryColumns;
  std::mutex merge;
  ParallelFor(h, RowGrain(w), [&](int64_t y0, int64_t y1) {
    std::vector<int64_t> table(static_cast<size_t>(classes.count * K), 0);
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        const int64_t i = y * w + x;
        const int64_t cg = g.labels[i], cp = p.labels[i];
        if (classes.use_ignore && cg == classes.ignore) continue;
        const uint8_t fg = g.flags[i], fp = p.flags[i];
        int64_t* rg = &table[cg * K];  // gt is a class here (Load checked it)
        rg[0] += (fg & kBand) != 0;
        if (fg & kEdge) {
          ++rg[5];
          rg[6] += cp == cg ? (fp & kNear) != 0 : ContourWithin(p, cg, x, y, tolerance, w, h);
        }
        if (!classes.IsClass(cp)) continue;  // ignore_index: no class
        int64_t* rp = &table[cp * K];
        if (fp & kBand) {
          ++rp[1];
          rp[2] += cp == cg && (fg & kBand);
        }
        if (fp & kEdge) {
          ++rp[3];
          rp[4] += cp == cg ? (fg & kNear) != 0 : ContourWithin(g, cp, x, y, tolerance, w, h);
        }
      }
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
  g.labels.resize(size);
  p.labels.resize(size);
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
    m->flags.resize(size);
    m->run.resize(size);
    FindEdges(m, w, h);
    MarkWithin(m, w, h, distance - 1, kBand);
    MarkWithin(m, w, h, tolerance, kNear);
    std::vector<int32_t>().swap(m->run);
    ListEdges(m, classes, w, h);
  }
  Count(g, p, classes, tolerance, w, h, out);
  return true;
}

}  // namespace coreseg
