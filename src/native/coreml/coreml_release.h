// Python references that Core ML may let go of on its own threads: the
// caller's pixels wrapped in a CVPixelBuffer (CoreVideo's release callback)
// and the caller's output array offered as an MLMultiArray backing (its
// deallocator). Plain C++ and CPython, no Apple framework: the tests build
// this header on Linux too (tests/test_coreml_cache.py) and drive it from
// threads Python does not know, as Grand Central Dispatch's are.
//
// A thread Python does not know must never take the GIL. Taking it while
// the interpreter finalises ends the thread with pthread_exit (CPython does
// that to every thread but the finalising one), which aborts the process on
// a GCD worker thread; and checking Py_IsFinalizing() first does not help,
// since finalisation can begin between the check and the GIL. So such a
// thread hands its decref over: it queues the object here and asks the
// interpreter to drain the queue on its main thread with Py_AddPendingCall,
// which needs neither the GIL nor a thread state.
#pragma once

#include <Python.h>

#include <atomic>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace coreseg {
namespace coreml {

inline bool PythonFinalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

// Decrefs handed over by threads that must not take the GIL, done with the
// GIL by the interpreter's main thread (a pending call), or earlier by any
// thread that holds the GIL here (DrainWithGil, after every prediction).
//
// One pending call drains any number of objects, so the interpreter's
// small pending-call queue (32 calls before CPython 3.13) fills only when
// something else fills it. If it is full, the objects stay queued: the next
// Defer asks again, and the next prediction's return drains them. If the
// main thread runs no Python for a while (blocked in C), they wait until it
// does or until another prediction returns.
//
// At interpreter exit (an atexit hook, which runs while Python is whole,
// before finalisation proper) the queue is drained and closed: a release
// after that leaks its object (the process is ending) and calls nothing in
// Python. Close takes the mutex Defer holds around Py_AddPendingCall, so no
// such call is under way when finalisation goes on.
class DeferredDecrefs {
 public:
  // The process's one queue. Never destroyed: Core ML's threads may still
  // call Defer while static destructors run at exit.
  static DeferredDecrefs& Get() {
    static DeferredDecrefs* const queue = new DeferredDecrefs;
    return *queue;
  }

  // From a thread that may not hold the GIL and may be unknown to Python.
  // Never throws: it runs inside CoreVideo's and Core ML's callbacks.
  void Defer(PyObject* object) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    // Closed (exit under way) or never opened: leak rather than touch Python.
    if (!open_ || !Py_IsInitialized() || PythonFinalizing()) return;
    try {
      queue_.push_back(object);
    } catch (const std::bad_alloc&) {
      return;  // leaked: out of memory inside a release callback
    }
    if (!scheduled_) scheduled_ = Py_AddPendingCall(&DeferredDecrefs::DrainPending, this) == 0;
  }

  // With the GIL held: decref everything queued so far.
  void DrainWithGil() { DecrefAll(Take(false)); }

  // With the GIL held, at module import: releases may be handed over.
  void OpenWithGil() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
  }

  // With the GIL held, at interpreter exit: drain, and hand nothing over again.
  void CloseWithGil() { DecrefAll(Take(true)); }

  // Registers CloseWithGil with Python's atexit module and opens the queue.
  // With the GIL held (a module's init); -1 with a Python error set on failure.
  static int InstallWithGil() {
    static PyMethodDef close_def = {"_coreseg_close_release_queue", &DeferredDecrefs::CloseHook, METH_NOARGS,
                                    "Drain and close coreseg's queue of decrefs from Core ML's threads."};
    PyObject* atexit = PyImport_ImportModule("atexit");
    if (atexit == nullptr) return -1;
    PyObject* hook = PyCFunction_New(&close_def, nullptr);
    PyObject* done = hook == nullptr ? nullptr : PyObject_CallMethod(atexit, "register", "O", hook);
    Py_XDECREF(hook);
    Py_DECREF(atexit);
    if (done == nullptr) return -1;
    Py_DECREF(done);
    Get().OpenWithGil();
    return 0;
  }

  DeferredDecrefs(const DeferredDecrefs&) = delete;
  DeferredDecrefs& operator=(const DeferredDecrefs&) = delete;

 private:
  DeferredDecrefs() = default;

  std::vector<PyObject*> Take(bool close) {
    std::vector<PyObject*> taken;
    std::lock_guard<std::mutex> lock(mu_);
    if (close) open_ = false;
    taken.swap(queue_);
    return taken;
  }

  // Outside the mutex: a decref can run any Python code, which may release
  // more arrays through this queue.
  static void DecrefAll(std::vector<PyObject*> objects) {
    for (PyObject* object : objects) Py_DECREF(object);
  }

  // The pending call: the main thread, with the GIL.
  static int DrainPending(void* self) {
    auto* queue = static_cast<DeferredDecrefs*>(self);
    {
      std::lock_guard<std::mutex> lock(queue->mu_);
      queue->scheduled_ = false;
    }
    queue->DrainWithGil();
    return 0;
  }

  static PyObject* CloseHook(PyObject*, PyObject*) {
    Get().CloseWithGil();
    Py_RETURN_NONE;
  }

  std::mutex mu_;
  std::vector<PyObject*> queue_;
  bool open_ = false;       // between InstallWithGil and the atexit hook
  bool scheduled_ = false;  // a DrainPending is in the interpreter's queue
};

// A reference to a Python object shared by two holders: the call that
// handed it to Core ML (dropped with the GIL once the call is back) and
// Core ML (dropped from any thread, whenever it lets go). The last one out
// decrefs; so when Core ML lets go during the call, the usual case, the
// decref is the caller's, with the GIL, and nothing is handed over.
struct SharedRef {
  PyObject* object;
  std::atomic<int> holders{2};
};

// With the GIL held: one more reference to `object`, for two holders.
inline SharedRef* Share(PyObject* object) {
  auto* ref = new SharedRef{object};
  Py_INCREF(object);
  return ref;
}

// Core ML's side: any thread, any time, GIL or not; never takes the GIL.
inline void DropFromAnyThread(void* context) noexcept {
  auto* ref = static_cast<SharedRef*>(context);
  if (ref->holders.fetch_sub(1, std::memory_order_acq_rel) != 1) return;  // the caller still holds it
  PyObject* object = ref->object;
  delete ref;
  DeferredDecrefs::Get().Defer(object);
}

// The caller's side, with the GIL held; also drains what Core ML's threads
// handed over meanwhile.
inline void DropWithGil(SharedRef* ref) {
  if (ref != nullptr && ref->holders.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    Py_DECREF(ref->object);
    delete ref;
  }
  DeferredDecrefs::Get().DrainWithGil();
}

}  // namespace coreml
}  // namespace coreseg
