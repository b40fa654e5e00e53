// WithoutGil(f): run f() with the GIL released, for the pybind11 bindings.
#pragma once

#include <Python.h>

#include <exception>
#include <type_traits>

namespace coreseg {

// Runs f() with the GIL released. Not pybind11's gil_scoped_release: its
// destructor is noexcept, and at interpreter exit CPython ends a daemon
// thread that takes the GIL back with pthread_exit, whose forced unwinding
// through a noexcept frame calls std::terminate (an abort at exit while a
// kernel runs). Here the GIL is taken back in a frame unwinding may cross.
template <typename F>
auto WithoutGil(F&& f) -> decltype(f()) {
  using R = decltype(f());
  PyThreadState* state = PyEval_SaveThread();
  std::exception_ptr error;
  if constexpr (std::is_void_v<R>) {
    try {
      f();
    } catch (...) {
      error = std::current_exception();
    }
    PyEval_RestoreThread(state);
    if (error) std::rethrow_exception(error);
  } else {
    R result{};
    try {
      result = f();
    } catch (...) {
      error = std::current_exception();
    }
    PyEval_RestoreThread(state);
    if (error) std::rethrow_exception(error);
    return result;
  }
}

}  // namespace coreseg
