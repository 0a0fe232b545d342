#pragma once
// Shape and dtype rules of the batch family, written once on symbolic sizes. The CPU (and
// CUDA) kernels call them before touching data; the Meta kernels call them alone, so
// torch.compile(dynamic=True) and torch.export see the same checks and output shapes. The
// rules that need tensor values (index ranges, length sums) are at the end: the device kernels
// call them, the Meta kernels cannot.
#include <ATen/core/Tensor.h>
#include <c10/core/SymInt.h>
#include <c10/util/DimVector.h>

#include <optional>
#include <string>
#include <vector>

#include "common/checks.h"
#include "common/sizes.h"

namespace caffe2ops {

using SymShape = c10::SymDimVector;

SymShape batch_permutation_shape(const at::Tensor& X, const at::Tensor& indices);
void batch_permutation_gradient_check(const at::Tensor& indices, const at::Tensor& dY);

SymShape batch_gather_shape(const at::Tensor& data, const at::Tensor& indices, bool match_outer);
// Returns the canonical axis.
int64_t batch_gather_gradient_check(const at::Tensor& data, const at::Tensor& indices,
                                    const at::Tensor& grad, int64_t axis, bool match_outer);

SymShape batch_sparse_to_dense_shape(const at::Tensor& lengths, const at::Tensor& indices,
                                     const at::Tensor& values,
                                     const std::optional<at::Tensor>& output_shape_inference,
                                     int64_t dense_last_dim);
void batch_dense_to_sparse_check(const at::Tensor& lengths, const at::Tensor& indices,
                                 const at::Tensor& dense);

// [outer, C, inner] view of X for batch_moments: NCHW -> [N, C, HxW], NHWC -> [N*HxW, C, 1].
struct MomentsView {
  c10::SymInt outer, channels, inner;
};
MomentsView batch_moments_view(const char* op, const at::Tensor& X, const std::string& order);
void batch_moments_gradient_check(const at::Tensor& dmu, const at::Tensor& dvar,
                                  const at::Tensor& X, const MomentsView& v);

void batch_box_cox_check(const at::Tensor& data, const at::Tensor& lambda1,
                         const at::Tensor& lambda2);
SymShape batch_bucketize_shape(const at::Tensor& float_features, const at::Tensor& indices,
                               const at::Tensor& boundaries, const at::Tensor& lengths);
SymShape concat_batch_mat_mul_batch_gather_shape(const at::Tensor& indices,
                                                 at::TensorList inputs,
                                                 const char* op = "concat_batch_mat_mul_batch_gather");
// The forward's rules, and grad of the forward output's shape, dtype and device.
void concat_batch_mat_mul_batch_gather_gradient_check(const at::Tensor& indices, at::TensorList inputs,
                                                      const at::Tensor& grad);
SymShape batch_bucket_one_hot_shape(const at::Tensor& data, const at::Tensor& lengths,
                                    const at::Tensor& boundaries);
// BatchBucketize / BatchBucketOneHot accept boundaries of any floating dtype and compare in
// the promoted dtype, as torch.bucketize does (float32 with float32 is Caffe2's case).
at::ScalarType bucket_compare_dtype(const at::Tensor& features, const at::Tensor& boundaries);

// Checks that read tensor values (any device; lengths are read on the host). Each returns
// what the kernels need: the host row offsets of a lengths tensor.

// BatchGather's Caffe2 wording for an index outside [0, axis_dim).
IndexErrorText batch_gather_bounds_text(int64_t axis_dim);
// The indices of BatchSparseToDense / BatchDenseToSparse: 0 <= indices < D.
void check_sparse_layout_indices(const char* op, const at::Tensor& indices, int64_t D);
// (lengths, indices) pairs of BatchSparseToDense / BatchDenseToSparse: lengths >= 0 summing to
// len(indices), 0 <= indices < D.
std::vector<int64_t> sparse_layout_offsets(const char* op, const at::Tensor& lengths,
                                           const at::Tensor& indices, int64_t D);
// BatchBucketize: lengths >= 0 summing to len(boundaries), 0 <= indices < D.
std::vector<int64_t> batch_bucketize_offsets(const at::Tensor& float_features, const at::Tensor& indices,
                                             const at::Tensor& boundaries, const at::Tensor& lengths);
// BatchBucketOneHot: every length > 0, summing to len(boundaries).
std::vector<int64_t> batch_bucket_one_hot_offsets(const at::Tensor& lengths, const at::Tensor& boundaries);

}  // namespace caffe2ops
