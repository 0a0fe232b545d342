#include "batch/batch_shapes.h"

#include <ATen/ops/result_type.h>

#include "common/checks.h"
#include "common/sizes.h"

namespace caffe2ops {

namespace {

// batch_permutation and its gradient: `data` (X or dY) is permuted along dim 0 by 1-d indices
// with one entry per row.
void check_permutation(const char* op, const char* data_name, const at::Tensor& data,
                       const at::Tensor& indices) {
  check_min_dim(op, data_name, data, 1);
  check_dim(op, "indices (indices must be 1-d)", indices, 1);
  check_index_dtype(op, "indices", indices);
  check_same_device(op, data_name, data, "indices", indices);
  C2_CHECK(data.sym_size(0) == indices.sym_size(0), op, data_name, ".shape[0] = ", data.sym_size(0),
           " must equal len(indices) = ", indices.sym_size(0), " (one index per row)");
}

}  // namespace

SymShape batch_permutation_shape(const at::Tensor& X, const at::Tensor& indices) {
  check_permutation("batch_permutation", "X", X, indices);
  return SymShape(X.sym_sizes().begin(), X.sym_sizes().end());
}

void batch_permutation_gradient_check(const at::Tensor& indices, const at::Tensor& dY) {
  check_permutation("batch_permutation_gradient", "dY", dY, indices);
  check_floating("batch_permutation_gradient", "dY", dY);
}

SymShape batch_gather_shape(const at::Tensor& data, const at::Tensor& indices, bool match_outer) {
  constexpr const char* op = "batch_gather";
  C2_CHECK(data.dim() >= 2, op, "DATA should be at least 2-D, got shape ", data.sym_sizes());
  check_index_dtype(op, "indices", indices);
  check_same_device(op, "data", data, "indices", indices);
  if (match_outer) {
    C2_CHECK(indices.dim() >= 1 && indices.sym_size(0) == data.sym_size(0), op,
             "INDICES must have the same outer dims as DATA (before dim AXIS): indices shape ",
             indices.sym_sizes(), ", data shape ", data.sym_sizes());
  }
  auto ds = data.sym_sizes();
  if (ds[1] == 0) return SymShape(ds.begin(), ds.end());  // Caffe2: index shape ignored
  SymShape out{ds[0]};
  auto is = indices.sym_sizes();
  out.insert(out.end(), is.begin() + (match_outer ? 1 : 0), is.end());
  out.insert(out.end(), ds.begin() + 2, ds.end());
  return out;
}

int64_t batch_gather_gradient_check(const at::Tensor& data, const at::Tensor& indices,
                                    const at::Tensor& grad, int64_t axis, bool match_outer) {
  constexpr const char* op = "batch_gather_gradient";
  C2_CHECK(data.dim() >= 2, op, "DATA should be at least 2-D, got shape ", data.sym_sizes());
  check_index_dtype(op, "indices", indices);
  C2_CHECK(data.scalar_type() == at::kFloat || data.scalar_type() == at::kDouble, op,
           "BatchGatherGradient is not implemented on tensor of type ", data.scalar_type());
  check_same_dtype(op, "data", data, "grad", grad);
  check_same_device(op, "data", data, "indices", indices);
  check_same_device(op, "data", data, "grad", grad);
  axis = canonical_axis(op, axis, data.dim());
  C2_CHECK(grad.dim() >= axis, op, "grad must have rank >= axis ", axis, ", got ", grad.sym_sizes());
  for (int64_t k = 0; k < axis; ++k) {
    C2_CHECK(grad.sym_size(k) == data.sym_size(k), op,
             "batch gather outer dimensions should match: grad shape ", grad.sym_sizes(),
             ", data shape ", data.sym_sizes());
  }
  if (match_outer) {
    C2_CHECK(axis >= 1, op, "match_outer needs axis >= 1, got ", axis);
    C2_CHECK(indices.dim() >= axis, op, "INDICES must have the same outer dims as DATA (before dim AXIS)");
    for (int64_t k = 0; k < axis; ++k) {
      C2_CHECK(indices.sym_size(k) == data.sym_size(k), op,
               "INDICES must have the same outer dims as DATA (before dim AXIS): indices shape ",
               indices.sym_sizes(), ", data shape ", data.sym_sizes());
    }
  }
  if (data.sym_numel() == 0) return axis;
  auto ds = data.sym_sizes();
  c10::SymInt L = match_outer ? sym_prod(indices.sym_sizes(), axis, indices.dim()) : indices.sym_numel();
  c10::SymInt expected = sym_prod(ds, 0, axis) * L * sym_prod(ds, axis + 1, data.dim());
  C2_CHECK(grad.sym_numel() == expected, op, "grad has ", grad.sym_numel(),
           " elements, expected ", expected, " for data shape ", ds, " and indices shape ",
           indices.sym_sizes());
  return axis;
}

static void check_lengths_indices(const char* op, const at::Tensor& lengths,
                                  const at::Tensor& indices) {
  check_dim(op, "lengths", lengths, 1);
  check_dim(op, "indices", indices, 1);
  check_index_dtype(op, "lengths", lengths);
  check_index_dtype(op, "indices", indices);
  check_same_device(op, "lengths", lengths, "indices", indices);
}

SymShape batch_sparse_to_dense_shape(const at::Tensor& lengths, const at::Tensor& indices,
                                     const at::Tensor& values,
                                     const std::optional<at::Tensor>& output_shape_inference,
                                     int64_t dense_last_dim) {
  constexpr const char* op = "batch_sparse_to_dense";
  check_lengths_indices(op, lengths, indices);
  check_floating(op, "values", values);
  check_same_device(op, "lengths", lengths, "values", values);
  C2_CHECK(indices.sym_numel() == values.sym_numel(), op,
           "values must have one entry per index: indices has ", indices.sym_numel(),
           " elements, values ", values.sym_numel());
  c10::SymInt D = dense_last_dim;
  if (output_shape_inference.has_value() && output_shape_inference->defined()) {
    const auto& S = *output_shape_inference;
    check_dim(op, "output_shape_inference", S, 2);
    if (dense_last_dim == -1) {
      D = S.sym_size(1);
    } else {
      C2_CHECK(S.sym_size(1) == dense_last_dim, op,
               "The last dim argument is not aligned with the shape input last dim: "
               "dense_last_dim = ", dense_last_dim, ", output_shape_inference.shape[1] = ",
               S.sym_size(1));
    }
  } else {
    C2_CHECK(dense_last_dim >= 1, op, "The last dim of dense must be >= 1, got dense_last_dim = ",
             dense_last_dim, " (pass dense_last_dim or output_shape_inference)");
  }
  SymShape shape{lengths.sym_size(0), D};
  check_shape_fits(op, "the dense output [len(lengths), dense_last_dim]", shape, values.element_size());
  return shape;
}

void batch_dense_to_sparse_check(const at::Tensor& lengths, const at::Tensor& indices,
                                 const at::Tensor& dense) {
  constexpr const char* op = "batch_dense_to_sparse";
  check_lengths_indices(op, lengths, indices);
  check_dim(op, "dense", dense, 2);
  check_floating(op, "dense", dense);
  check_same_device(op, "lengths", lengths, "dense", dense);
  C2_CHECK(lengths.sym_size(0) == dense.sym_size(0), op, "len(lengths) = ", lengths.sym_size(0),
           " must equal dense.shape[0] = ", dense.sym_size(0));
}

MomentsView batch_moments_view(const char* op, const at::Tensor& X, const std::string& order) {
  bool nhwc = order_is_nhwc(op, order);
  check_min_dim(op, "X", X, 2);
  check_floating(op, "X", X);
  auto s = X.sym_sizes();
  const int64_t r = X.dim();
  if (nhwc) return {sym_prod(s, 0, r - 1), s[r - 1], 1};
  return {s[0], s[1], sym_prod(s, 2, r)};
}

void batch_moments_gradient_check(const at::Tensor& dmu, const at::Tensor& dvar,
                                  const at::Tensor& X, const MomentsView& v) {
  constexpr const char* op = "batch_moments_gradient";
  for (const auto* g : {&dmu, &dvar}) {
    const char* name = g == &dmu ? "dmu" : "dvar";
    check_dim(op, name, *g, 1);
    C2_CHECK(g->sym_size(0) == v.channels, op, name, " must have shape [C] = [", v.channels,
             "], got ", g->sym_sizes());
    check_same_dtype(op, "X", X, name, *g);
    check_same_device(op, "X", X, name, *g);
  }
}

void batch_box_cox_check(const at::Tensor& data, const at::Tensor& lambda1,
                         const at::Tensor& lambda2) {
  constexpr const char* op = "batch_box_cox";
  check_min_dim(op, "data", data, 1);
  check_floating(op, "data", data, /*allow_half=*/false);
  if (data.sym_numel() == 0) return;  // Caffe2 returns before looking at the lambdas
  c10::SymInt D = sym_prod(data.sym_sizes(), 1, data.dim());
  for (const auto* l : {&lambda1, &lambda2}) {
    const char* name = l == &lambda1 ? "lambda1" : "lambda2";
    C2_CHECK(l->sym_numel() == D, op, name, " must have D = ", D, " elements, got ",
             l->sym_numel());
    check_same_dtype(op, "data", data, name, *l);
    check_same_device(op, "data", data, name, *l);
  }
}

SymShape batch_bucketize_shape(const at::Tensor& float_features, const at::Tensor& indices,
                               const at::Tensor& boundaries, const at::Tensor& lengths) {
  constexpr const char* op = "batch_bucketize";
  check_dim(op, "float_features", float_features, 2);
  check_floating(op, "float_features", float_features, false);
  check_dim(op, "indices", indices, 1);
  check_index_dtype(op, "indices", indices);
  check_dim(op, "boundaries", boundaries, 1);
  check_floating(op, "boundaries", boundaries);
  check_dim(op, "lengths", lengths, 1);
  check_index_dtype(op, "lengths", lengths);
  for (const auto* t : {&indices, &boundaries, &lengths}) {
    check_same_device(op, "float_features", float_features, "every input", *t);
  }
  C2_CHECK(lengths.sym_numel() == indices.sym_numel(), op, "lengths has ", lengths.sym_numel(),
           " entries but indices has ", indices.sym_numel());
  return SymShape{float_features.sym_size(0), indices.sym_size(0)};
}

SymShape concat_batch_mat_mul_batch_gather_shape(const at::Tensor& indices,
                                                 at::TensorList inputs, const char* op) {
  check_dim(op, "indices", indices, 1);
  check_index_dtype(op, "indices", indices);
  C2_CHECK(!inputs.empty(), op, "needs at least one data input");
  const auto& x0 = inputs[0];
  C2_CHECK(x0.dim() >= 1, op, "Axis not in input ndim range: inputs[0] has rank 0");
  check_floating(op, "inputs[0]", x0, false);
  check_same_device(op, "inputs[0]", x0, "indices", indices);
  for (size_t j = 1; j < inputs.size(); ++j) {
    const auto& xj = inputs[j];
    C2_CHECK(xj.scalar_type() == x0.scalar_type(), op,
             "All inputs must have the same type, expected: ", x0.scalar_type(), " but got: ",
             xj.scalar_type(), " for input: ", j);
    check_same_device(op, "inputs[0]", x0, "inputs[j]", xj);
    C2_CHECK(xj.sym_sizes() == x0.sym_sizes(), op, "every input must have the shape of inputs[0] ",
             x0.sym_sizes(), ", got ", xj.sym_sizes(), " for input: ", j);
  }
  return SymShape{x0.sym_size(0), indices.sym_size(0)};
}

void concat_batch_mat_mul_batch_gather_gradient_check(const at::Tensor& indices, at::TensorList inputs,
                                                      const at::Tensor& grad) {
  constexpr const char* op = "concat_batch_mat_mul_batch_gather_gradient";
  auto shape = concat_batch_mat_mul_batch_gather_shape(indices, inputs, op);
  check_same_dtype(op, "inputs[0]", inputs[0], "grad", grad);
  check_same_device(op, "inputs[0]", inputs[0], "grad", grad);
  C2_CHECK(grad.sym_sizes() == c10::SymIntArrayRef(shape), op, "grad must have the output's shape ",
           c10::SymIntArrayRef(shape), ", got ", grad.sym_sizes());
}

SymShape batch_bucket_one_hot_shape(const at::Tensor& data, const at::Tensor& lengths,
                                    const at::Tensor& boundaries) {
  constexpr const char* op = "batch_bucket_one_hot";
  check_min_dim(op, "data", data, 1);
  check_floating(op, "data", data, false);
  check_index_dtype(op, "lengths", lengths);
  check_floating(op, "boundaries", boundaries);
  check_same_device(op, "data", data, "lengths", lengths);
  check_same_device(op, "data", data, "boundaries", boundaries);
  c10::SymInt D = sym_prod(data.sym_sizes(), 1, data.dim());
  C2_CHECK(lengths.sym_numel() == D, op, "lengths must have D = ", D, " elements, got ",
           lengths.sym_numel());
  return SymShape{data.sym_size(0), boundaries.sym_numel() + D};
}

at::ScalarType bucket_compare_dtype(const at::Tensor& features, const at::Tensor& boundaries) {
  return at::result_type(features, boundaries);
}

IndexErrorText batch_gather_bounds_text(int64_t axis_dim) {
  return [axis_dim](int64_t, int64_t v) {
    return "INDICES element is out of DATA bounds, id=" + std::to_string(v) +
           " axis_dim=" + std::to_string(axis_dim);
  };
}

void check_sparse_layout_indices(const char* op, const at::Tensor& indices, int64_t D) {
  check_indices_in_range(op, "indices", indices, D, [D](int64_t, int64_t v) {
    return "an index must name a column of dense, whose last dim is " + std::to_string(D) +
           ", got " + std::to_string(v);
  });
}

std::vector<int64_t> sparse_layout_offsets(const char* op, const at::Tensor& lengths,
                                           const at::Tensor& indices, int64_t D) {
  auto offsets = lengths_to_offsets(op, "lengths", lengths);
  C2_CHECK(offsets.back() == indices.numel(), op, "sum of lengths (", offsets.back(),
           ") must equal the number of indices (", indices.numel(), ")");
  check_sparse_layout_indices(op, indices, D);
  return offsets;
}

std::vector<int64_t> batch_bucketize_offsets(const at::Tensor& float_features, const at::Tensor& indices,
                                             const at::Tensor& boundaries, const at::Tensor& lengths) {
  constexpr const char* op = "batch_bucketize";
  auto offsets = lengths_to_offsets(op, "lengths", lengths);
  C2_CHECK(offsets.back() == boundaries.numel(), op, "sum of lengths (", offsets.back(),
           ") must equal the number of boundaries (", boundaries.numel(), ")");
  check_indices_in_range(op, "indices", indices, float_features.size(1));
  return offsets;
}

std::vector<int64_t> batch_bucket_one_hot_offsets(const at::Tensor& lengths, const at::Tensor& boundaries) {
  constexpr const char* op = "batch_bucket_one_hot";
  auto offsets = lengths_to_offsets(op, "lengths", lengths.reshape({-1}));
  for (size_t j = 0; j + 1 < offsets.size(); ++j) {
    C2_CHECK(offsets[j + 1] > offsets[j], op, "lengths[", j, "] must be > 0, got ",
             offsets[j + 1] - offsets[j]);
  }
  C2_CHECK(offsets.back() == boundaries.numel(), op,
           "The sum of length should be equal to the length of boundaries: sum(lengths) = ",
           offsets.back(), ", boundaries has ", boundaries.numel(), " elements");
  return offsets;
}

}  // namespace caffe2ops
