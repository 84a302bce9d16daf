// Conversion of Python arguments (NumPy arrays, or anything np.asarray accepts) into the views of
// tlkit/core/matrix_view.h. Conversion only: every check of the data itself (shapes against each
// other, finiteness, classes) is left to tlkit::core, so Python and the CLI raise the same
// messages.
//
// Zero-copy rule (docs/python.md): a float32 or float64 array in native byte order whose address
// and strides are multiples of its item size (C order, Fortran order, or any slice of them) is
// passed to the core as it is, strides included. Anything else is converted with NumPy semantics
// (np.ascontiguousarray): float32 with odd strides or foreign byte order stays float32; float16,
// longdouble, integer and bool arrays become float64. Complex, object, string and other
// non-numeric arrays are refused (ValueError).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "tlkit/core/matrix_view.h"

namespace tlkit::python {

namespace py = pybind11;

/// A view together with the Python object that owns its memory: the caller's own array when the
/// layout allows it, otherwise a converted copy. Keep it alive (and the GIL released only after it
/// is built) for as long as the view is used.
template <typename View>
struct Held {
  py::object owner;
  View view;
  bool copied = false;
  std::string reason;  ///< why a copy was made; empty when none was
};

using HeldMatrix = Held<FeatureView>;
using HeldLabels = Held<LabelView>;
using HeldTargets = Held<TargetView>;

/// An N x D real matrix (features, probabilities). `what` names the argument in messages.
HeldMatrix matrix_arg(py::handle obj, const char* what);

/// N class labels: any integer or bool dtype, shape (N,) or (N, 1), as int64. `hint` completes the
/// message for float labels (how to pass continuous targets instead).
HeldLabels labels_arg(py::handle obj, const char* what, const char* hint);

/// N or N x K real regression targets, as float64.
HeldTargets targets_arg(py::handle obj, const char* what);

/// A 1-D sequence of real numbers (the correlation functions), copied.
std::vector<double> vector_arg(py::handle obj, const char* what);

/// What matrix_arg (role "features" or "probs"), labels_arg ("labels") or targets_arg
/// ("targets") would hand to the core for `obj`: whether it copies and why, the dtype, shape and
/// element strides of the view, and the data addresses of the view and of the input array.
py::dict debug_view_info(py::handle obj, const std::string& role);

}  // namespace tlkit::python
