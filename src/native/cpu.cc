#include "cpu.h"

#include <atomic>
#include <stdexcept>

namespace coreseg {
namespace {

std::vector<const RowFunctions*> Tables() {
  std::vector<const RowFunctions*> tables = {&kRowsC};
#if CORESEG_ARCH_X86_64
  // __builtin_cpu_supports("avx2") also checks that the OS saves the YMM
  // registers (XCR0), so a true answer means AVX2 code may run. The AVX2
  // table also converts float16 with F16C, which every AVX2 CPU has.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.1")) tables.push_back(&kRowsSSE41);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c"))
    tables.push_back(&kRowsAVX2);
#endif
#if CORESEG_ARCH_ARM64
  tables.push_back(&kRowsNEON);
#endif
  return tables;
}

const std::vector<const RowFunctions*>& AvailableTables() {
  static const std::vector<const RowFunctions*> tables = Tables();
  return tables;
}

std::atomic<const RowFunctions*>& Active() {
  static std::atomic<const RowFunctions*> active{&BestRows()};
  return active;
}

}  // namespace

std::vector<std::string> AvailableBackends() {
  std::vector<std::string> names;
  for (const RowFunctions* t : AvailableTables()) names.emplace_back(t->name);
  return names;
}

const RowFunctions& BestRows() { return *AvailableTables().back(); }

const RowFunctions& ActiveRows() { return *Active().load(std::memory_order_acquire); }

const RowFunctions* RowsByName(const std::string& name) {
  for (const RowFunctions* t : AvailableTables())
    if (name == t->name) return t;
  return nullptr;
}

void SetActiveBackend(const std::string& name) {
  const RowFunctions* t = RowsByName(name);
  if (t == nullptr) {
    std::string names;
    for (const std::string& n : AvailableBackends()) names += (names.empty() ? "" : ", ") + n;
    throw std::invalid_argument("SIMD backend '" + name +
                                "' is not available on this CPU; available: " + names);
  }
  Active().store(t, std::memory_order_release);
}

}  // namespace coreseg
