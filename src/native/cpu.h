// Which row-function table runs: detected once, or forced (CORESEG_SIMD,
// coreseg._native.set_simd_backend, the C++ tests).
#pragma once

#include <string>
#include <vector>

#include "row.h"

namespace coreseg {

// The names of the backends this CPU can run, best last ("scalar" first).
std::vector<std::string> AvailableBackends();

// The best table for this CPU.
const RowFunctions& BestRows();

// The table in use. Thread-safe to read while another thread switches.
const RowFunctions& ActiveRows();

// Switch to the named backend; throws std::invalid_argument naming the
// backends available when `name` is unknown or not supported here.
void SetActiveBackend(const std::string& name);

// The table of a named backend, or nullptr if not available here.
const RowFunctions* RowsByName(const std::string& name);

}  // namespace coreseg
