#include "arrays.h"

#include <fmt/format.h>

#include <cstdint>
#include <limits>

#include "tlkit/core/error.h"

namespace tlkit::python {

namespace {

py::module_ numpy() { return py::module_::import("numpy"); }

// np.asarray semantics: an ndarray (or subclass) passes through unchanged; lists, scalars and
// objects with __array__ or the buffer protocol are converted by NumPy, whose own exceptions
// propagate.
py::array as_array(py::handle obj, const char* what) {
  if (obj.is_none()) TLKIT_THROW_ARG("{}: expected an array, got None", what);
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  return numpy().attr("asarray")(obj).cast<py::array>();
}

std::string shape_string(const py::array& a) {
  return py::str(a.attr("shape")).cast<std::string>();
}

std::string dtype_string(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

bool native_byte_order(const py::dtype& dt) {
  const char b = dt.byteorder();
  if (b == '=' || b == '|') return true;
  const std::uint16_t one = 1;
  const bool little = *reinterpret_cast<const unsigned char*>(&one) == 1;
  return little ? b == '<' : b == '>';
}

// The address and every stride that matters (dimensions longer than 1) are whole elements.
bool element_aligned(const py::array& a) {
  const auto size = static_cast<std::uintptr_t>(a.itemsize());
  if (reinterpret_cast<std::uintptr_t>(a.data()) % size != 0) return false;
  for (py::ssize_t k = 0; k < a.ndim(); ++k)
    if (a.shape(k) > 1 && a.strides(k) % static_cast<py::ssize_t>(size) != 0) return false;
  return true;
}

void check_real(const py::array& a, const char* what) {
  const char k = a.dtype().kind();
  if (k == 'f' || k == 'i' || k == 'u' || k == 'b') return;
  if (k == 'c')
    TLKIT_THROW_ARG("{}: complex dtype {} is not supported (pass the real part or the magnitude)",
                    what, dtype_string(a));
  TLKIT_THROW_ARG("{}: must be real numbers, got dtype {}", what, dtype_string(a));
}

// Element stride of dimension k (strides are only meaningful for dimensions longer than 1).
std::int64_t element_stride(const py::array& a, py::ssize_t k, std::int64_t fallback) {
  if (k >= a.ndim() || a.shape(k) <= 1) return fallback;
  return static_cast<std::int64_t>(a.strides(k) / a.itemsize());
}

py::array contiguous(const py::array& a, const char* dtype) {
  return numpy().attr("ascontiguousarray")(a, numpy().attr(dtype)).cast<py::array>();
}

// Why `a` cannot be viewed in place (empty: it can): a dtype other than the accepted ones
// (`accepted_dtype`), a foreign byte order, or addresses that are not whole elements.
std::string copy_reason(const py::array& a, bool accepted_dtype) {
  if (!accepted_dtype) return fmt::format("dtype {} is converted to float64", dtype_string(a));
  if (!native_byte_order(a.dtype())) return "non-native byte order";
  if (!element_aligned(a)) return "address or strides are not whole elements";
  return {};
}

}  // namespace

HeldMatrix matrix_arg(py::handle obj, const char* what) {
  py::array a = as_array(obj, what);
  if (a.ndim() != 2)
    TLKIT_THROW_ARG("{}: must be a 2-D array (N, D), got shape {}", what, shape_string(a));
  check_real(a, what);
  const py::dtype dt = a.dtype();
  const bool real = dt.kind() == 'f' && (dt.itemsize() == 4 || dt.itemsize() == 8);
  HeldMatrix h;
  h.reason = copy_reason(a, real);
  if (!h.reason.empty()) {
    a = contiguous(a, real && dt.itemsize() == 4 ? "float32" : "float64");
    h.copied = true;
  }
  h.owner = a;
  FeatureView& v = h.view;
  v.data = a.data();
  v.dtype = a.itemsize() == 4 ? Real::kFloat32 : Real::kFloat64;
  v.rows = static_cast<std::int64_t>(a.shape(0));
  v.cols = static_cast<std::int64_t>(a.shape(1));
  v.col_stride = element_stride(a, 1, 1);
  v.row_stride = element_stride(a, 0, v.cols);
  return h;
}

HeldLabels labels_arg(py::handle obj, const char* what, const char* hint) {
  py::array a = as_array(obj, what);
  if (!(a.ndim() == 1 || (a.ndim() == 2 && a.shape(1) == 1)))
    TLKIT_THROW_ARG("{}: labels must have shape (N,) or (N, 1), got {}{}", what, shape_string(a),
                    a.ndim() == 2 ? " (one-hot or multi-label 0/1 columns are a target matrix: "
                                    "give class indices, or score the columns as regression "
                                    "targets with regression=True)"
                                  : "");
  const py::dtype dt = a.dtype();
  const char k = dt.kind();
  if (k == 'f')
    TLKIT_THROW_ARG("{}: labels have dtype {}; classification needs integer labels ({})", what,
                    dtype_string(a), hint);
  if (k != 'i' && k != 'u' && k != 'b')
    TLKIT_THROW_ARG("{}: labels must be integers or bool, got dtype {}", what, dtype_string(a));
  HeldLabels h;
  const bool int64 = k == 'i' && dt.itemsize() == 8 && native_byte_order(dt);
  if (!int64)
    h.reason = fmt::format("dtype {} is converted to int64", dtype_string(a));
  else if (!element_aligned(a) || element_stride(a, 0, 1) != 1)
    h.reason = "labels are not contiguous";
  if (!h.reason.empty()) {
    py::object flat = a.attr("reshape")(-1);
    if (k == 'u' && dt.itemsize() == 8) {
      const py::object limit = numpy().attr("uint64")(std::numeric_limits<std::int64_t>::max());
      const py::array big = numpy().attr("flatnonzero")(flat.attr("__gt__")(limit));
      if (big.size() > 0) {
        const py::object row = big[py::int_(0)];
        TLKIT_THROW_ARG("{}: label {} at row {} does not fit in int64", what,
                        py::str(flat[row]).cast<std::string>(), row.cast<std::int64_t>());
      }
    }
    a = contiguous(flat.cast<py::array>(), "int64");
    h.copied = true;
  }
  h.owner = a;
  h.view =
      LabelView{static_cast<const std::int64_t*>(a.data()), static_cast<std::int64_t>(a.shape(0))};
  return h;
}

HeldTargets targets_arg(py::handle obj, const char* what) {
  py::array a = as_array(obj, what);
  if (a.ndim() != 1 && a.ndim() != 2)
    TLKIT_THROW_ARG("{}: targets must have shape (N,) or (N, K), got {}", what, shape_string(a));
  check_real(a, what);
  const py::dtype dt = a.dtype();
  HeldTargets h;
  h.reason = copy_reason(a, dt.kind() == 'f' && dt.itemsize() == 8);
  if (!h.reason.empty()) {
    a = contiguous(a, "float64");
    h.copied = true;
  }
  h.owner = a;
  TargetView& t = h.view;
  t.data = static_cast<const double*>(a.data());
  t.rows = static_cast<std::int64_t>(a.shape(0));
  t.cols = a.ndim() == 2 ? static_cast<std::int64_t>(a.shape(1)) : 1;
  t.col_stride = element_stride(a, 1, 1);
  t.row_stride = element_stride(a, 0, t.cols);
  return h;
}

std::vector<double> vector_arg(py::handle obj, const char* what) {
  py::array a = as_array(obj, what);
  if (a.ndim() != 1)
    TLKIT_THROW_ARG("{}: must be a 1-D sequence of numbers, got shape {}", what, shape_string(a));
  check_real(a, what);
  a = contiguous(a, "float64");
  const auto* p = static_cast<const double*>(a.data());
  return std::vector<double>(p, p + a.shape(0));
}

py::dict debug_view_info(py::handle obj, const std::string& role) {
  py::dict d;
  d["input_data"] = py::isinstance<py::array>(obj)
                        ? py::int_(reinterpret_cast<std::uintptr_t>(
                              py::reinterpret_borrow<py::array>(obj).data()))
                        : py::object(py::none());
  auto fill = [&](const auto& h, const void* data, const char* dtype, std::int64_t rows,
                  std::int64_t cols, std::int64_t row_stride, std::int64_t col_stride) {
    d["copied"] = h.copied;
    d["reason"] = h.reason;
    d["dtype"] = dtype;
    d["shape"] = py::make_tuple(rows, cols);
    d["strides"] = py::make_tuple(row_stride, col_stride);
    d["data"] = py::int_(reinterpret_cast<std::uintptr_t>(data));
  };
  if (role == "features" || role == "probs") {
    const HeldMatrix h = matrix_arg(obj, role.c_str());
    const FeatureView& v = h.view;
    fill(h, v.data, v.dtype == Real::kFloat32 ? "float32" : "float64", v.rows, v.cols, v.row_stride,
         v.col_stride);
  } else if (role == "labels") {
    const HeldLabels h = labels_arg(obj, "labels", "pass continuous targets as targets");
    fill(h, h.view.data, "int64", h.view.size, 1, 1, 1);
  } else if (role == "targets") {
    const HeldTargets h = targets_arg(obj, "targets");
    const TargetView& t = h.view;
    fill(h, t.data, "float64", t.rows, t.cols, t.row_stride, t.col_stride);
  } else {
    TLKIT_THROW_ARG("_debug_view_info: role must be features, probs, labels or targets, got '{}'",
                    role);
  }
  return d;
}

}  // namespace tlkit::python
