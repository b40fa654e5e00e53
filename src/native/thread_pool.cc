#include "thread_pool.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace coreseg {
namespace {

class ThreadPool {
 public:
  // Starts up to threads - 1 workers. One that cannot start (the system is
  // out of threads or memory) ends the start-up: the pool works with those
  // already running, and every member they use is already constructed.
  explicit ThreadPool(int threads) : requested_(threads) {
    workers_.reserve(static_cast<size_t>(threads > 1 ? threads - 1 : 0));
    for (int i = 1; i < threads; ++i) {
      try {
        workers_.emplace_back([this] { Work(); });
      } catch (const std::system_error&) {
        break;
      }
    }
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  int requested() const { return requested_; }

  // False when another call holds the pool: the caller then runs inline.
  bool TryRun(int64_t n, int64_t chunk,
              const std::function<void(int64_t, int64_t)>& fn) {
    std::unique_lock<std::mutex> call(call_mu_, std::try_to_lock);
    if (!call.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      n_ = n;
      chunk_ = chunk;
      next_.store(0);
      error_ = nullptr;
      pending_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    RunChunks();
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return pending_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  void RunChunks() {
    for (;;) {
      const int64_t begin = next_.fetch_add(chunk_);
      if (begin >= n_) return;
      try {
        (*fn_)(begin, std::min(n_, begin + chunk_));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  void Work() {
    uint64_t seen = 0;
    for (;;) {
      // Video loops call kernels back to back: stay awake briefly so the
      // next call does not pay a futex wake-up per worker.
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      while (generation_.load(std::memory_order_acquire) == seen &&
             std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
        if (stop_) return;
        seen = generation_.load();
      }
      RunChunks();
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  const int requested_;
  std::mutex call_mu_;  // one ParallelFor on the pool at a time
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, chunk_ = 1;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;
  int pending_ = 0;
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
  // Last: constructed after everything the workers use.
  std::vector<std::thread> workers_;
};

int DefaultThreads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(std::min(n, 64u));
}

std::mutex pool_mu;
int wanted_threads = DefaultThreads();
// Held through a pointer that is never freed: joining threads from a static
// destructor during interpreter shutdown can deadlock. A shared_ptr, so a
// resize (set_num_threads) never frees a pool that a running call holds.
std::shared_ptr<ThreadPool>* pool = new std::shared_ptr<ThreadPool>();
pid_t pool_pid = 0;

std::shared_ptr<ThreadPool> Pool() {
  std::lock_guard<std::mutex> lock(pool_mu);
  if (*pool && pool_pid != getpid()) {
    // A forked child has none of the parent's threads: leak the old pool
    // (destroying it would join threads that do not exist here).
    new std::shared_ptr<ThreadPool>(std::move(*pool));
    pool->reset();
  }
  if (*pool && (*pool)->requested() != wanted_threads) pool->reset();
  if (!*pool && wanted_threads > 1) {
    *pool = std::make_shared<ThreadPool>(wanted_threads);
    pool_pid = getpid();
  }
  return *pool;
}

}  // namespace

void SetNumThreads(int n) {
  std::lock_guard<std::mutex> lock(pool_mu);
  wanted_threads = std::clamp(n, 1, kMaxThreads);
}

int NumThreads() {
  std::lock_guard<std::mutex> lock(pool_mu);
  return wanted_threads;
}

void ParallelFor(int64_t n, int64_t grain,
                 const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int threads = NumThreads();
  if (threads > 1 && n >= 2 * grain) {
    // A few chunks per thread balance uneven rows without much overhead;
    // equal ones, a multiple of the thread count where there are enough,
    // so no thread ends alone on a short last chunk.
    int64_t chunks = std::min<int64_t>(4 * threads, n / grain);
    if (chunks > threads) chunks -= chunks % threads;
    const int64_t chunk = (n + chunks - 1) / chunks;
    const std::shared_ptr<ThreadPool> p = Pool();
    if (p != nullptr && p->TryRun(n, chunk, fn)) return;
  }
  fn(0, n);
}

}  // namespace coreseg
