// A small pool of worker threads that splits row bands of an image.
// Results never depend on the thread count: every band writes its own rows.
#pragma once

#include <cstdint>
#include <functional>

namespace coreseg {

// Most threads a pool runs (set_num_threads refuses more).
constexpr int kMaxThreads = 256;

// Threads used by ParallelFor, the caller's included. Default: all cores
// (at most 64). If the system cannot start them all, the pool runs with
// those that did start.
void SetNumThreads(int n);  // 1 <= n <= kMaxThreads
int NumThreads();

// Calls fn(begin, end) on disjoint chunks covering [0, n), each at least
// `grain` long (except the last), on the pool and the calling thread, and
// returns when all are done; the first exception thrown is rethrown. Runs
// inline when one thread is set, when the work is small, or when the pool
// is already busy (another Python thread, or a nested call).
void ParallelFor(int64_t n, int64_t grain,
                 const std::function<void(int64_t, int64_t)>& fn);

}  // namespace coreseg
