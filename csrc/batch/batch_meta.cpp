// Meta kernels of the batch family: the shared shape rules on symbolic sizes, no data.
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "batch/batch_shapes.h"
#include "common/register.h"

namespace caffe2ops {
namespace {

using Tensor = at::Tensor;

Tensor batch_permutation_meta(const Tensor& X, const Tensor& indices) {
  return at::empty_symint(batch_permutation_shape(X, indices), X.options());
}

Tensor batch_permutation_gradient_meta(const Tensor& indices, const Tensor& dY) {
  batch_permutation_gradient_check(indices, dY);
  return at::empty_symint(dY.sym_sizes(), dY.options());
}

Tensor batch_gather_meta(const Tensor& data, const Tensor& indices, bool match_outer) {
  return at::empty_symint(batch_gather_shape(data, indices, match_outer), data.options());
}

Tensor batch_gather_gradient_meta(const Tensor& data, const Tensor& indices, const Tensor& grad, int64_t axis,
                             bool match_outer) {
  batch_gather_gradient_check(data, indices, grad, axis, match_outer);
  return at::empty_symint(data.sym_sizes(), data.options());
}

Tensor batch_sparse_to_dense_meta(const Tensor& lengths, const Tensor& indices, const Tensor& values,
                             const std::optional<Tensor>& output_shape_inference,
                             int64_t dense_last_dim, double) {
  return at::empty_symint(batch_sparse_to_dense_shape(lengths, indices, values,
                                                      output_shape_inference, dense_last_dim),
                          values.options());
}

Tensor batch_dense_to_sparse_meta(const Tensor& lengths, const Tensor& indices, const Tensor& dense) {
  batch_dense_to_sparse_check(lengths, indices, dense);
  return at::empty_symint(indices.sym_sizes(), dense.options());
}

std::tuple<Tensor, Tensor> batch_moments_meta(const Tensor& X, c10::string_view order) {
  auto v = batch_moments_view("batch_moments", X, std::string(order));
  return {at::empty_symint({v.channels}, X.options()), at::empty_symint({v.channels}, X.options())};
}

Tensor batch_moments_gradient_meta(const Tensor& dmu, const Tensor& dvar, const Tensor& X, c10::string_view order) {
  auto v = batch_moments_view("batch_moments_gradient", X, std::string(order));
  batch_moments_gradient_check(dmu, dvar, X, v);
  return at::empty_symint(X.sym_sizes(), X.options());
}

Tensor batch_box_cox_meta(const Tensor& data, const Tensor& lambda1, const Tensor& lambda2, int64_t) {
  batch_box_cox_check(data, lambda1, lambda2);
  return at::empty_symint(data.sym_sizes(), data.options());
}

Tensor batch_bucketize_meta(const Tensor& float_features, const Tensor& indices, const Tensor& boundaries,
                       const Tensor& lengths) {
  return at::empty_symint(batch_bucketize_shape(float_features, indices, boundaries, lengths),
                          float_features.options().dtype(at::kInt));
}

Tensor concat_batch_mat_mul_batch_gather_meta(const Tensor& indices, at::TensorList inputs) {
  auto shape = concat_batch_mat_mul_batch_gather_shape(indices, inputs);
  return at::empty_symint(shape, inputs[0].options());
}

Tensor batch_bucket_one_hot_meta(const Tensor& data, const Tensor& lengths, const Tensor& boundaries) {
  return at::empty_symint(batch_bucket_one_hot_shape(data, lengths, boundaries), data.options());
}

std::vector<Tensor> concat_batch_mat_mul_batch_gather_gradient_meta(const Tensor& indices, at::TensorList inputs,
                                                               const Tensor& grad) {
  concat_batch_mat_mul_batch_gather_gradient_check(indices, inputs, grad);
  std::vector<Tensor> outs;
  for (const auto& x : inputs) outs.push_back(at::empty_symint(x.sym_sizes(), x.options()));
  return outs;
}

}  // namespace

TORCH_LIBRARY_IMPL(caffe2ops, Meta, m) {
  C2_IMPL(m, "batch_permutation", &batch_permutation_meta);
  C2_IMPL(m, "batch_permutation_gradient", &batch_permutation_gradient_meta);
  C2_IMPL(m, "batch_gather", &batch_gather_meta);
  C2_IMPL(m, "batch_gather_gradient", &batch_gather_gradient_meta);
  C2_IMPL(m, "batch_sparse_to_dense", &batch_sparse_to_dense_meta);
  C2_IMPL(m, "batch_dense_to_sparse", &batch_dense_to_sparse_meta);
  C2_IMPL(m, "batch_moments", &batch_moments_meta);
  C2_IMPL(m, "batch_moments_gradient", &batch_moments_gradient_meta);
  C2_IMPL(m, "batch_box_cox", &batch_box_cox_meta);
  C2_IMPL(m, "batch_bucketize", &batch_bucketize_meta);
  C2_IMPL(m, "concat_batch_mat_mul_batch_gather", &concat_batch_mat_mul_batch_gather_meta);
  C2_IMPL(m, "concat_batch_mat_mul_batch_gather_gradient", &concat_batch_mat_mul_batch_gather_gradient_meta);
  C2_IMPL(m, "batch_bucket_one_hot", &batch_bucket_one_hot_meta);
}

}  // namespace caffe2ops
