// Schemas of the batch family.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(caffe2ops, m) {
  const std::vector<at::Tag> tags{at::Tag::pt2_compliant_tag};
  m.def("batch_permutation(Tensor X, Tensor indices) -> Tensor", tags);
  m.def("batch_permutation_gradient(Tensor indices, Tensor dY) -> Tensor", tags);
  m.def("batch_gather(Tensor data, Tensor indices, bool match_outer=False) -> Tensor", tags);
  m.def("batch_gather_gradient(Tensor data, Tensor indices, Tensor grad, int axis=1, "
        "bool match_outer=False) -> Tensor", tags);
  m.def("batch_sparse_to_dense(Tensor lengths, Tensor indices, Tensor values, "
        "Tensor? output_shape_inference=None, int dense_last_dim=-1, float default_value=0.0) "
        "-> Tensor", tags);
  m.def("batch_sparse_to_dense_gradient(Tensor lengths, Tensor indices, Tensor grad_dense) "
        "-> Tensor", tags);
  m.def("batch_dense_to_sparse(Tensor lengths, Tensor indices, Tensor dense) -> Tensor", tags);
  m.def("batch_dense_to_sparse_gradient(Tensor lengths, Tensor indices, Tensor grad_values, "
        "Tensor dense) -> Tensor", tags);
  m.def("batch_mat_mul(Tensor A, Tensor B, bool trans_a=False, bool trans_b=False, "
        "bool broadcast=False) -> Tensor", tags);
  m.def("batch_mat_mul_gradient(Tensor grad_Y, Tensor A, Tensor B, bool trans_a=False, "
        "bool trans_b=False, bool broadcast=False) -> (Tensor grad_A, Tensor grad_B)", tags);
  m.def("batch_moments(Tensor X, str order=\"NCHW\") -> (Tensor mean, Tensor var)", tags);
  m.def("batch_moments_gradient(Tensor dmu, Tensor dvar, Tensor X, str order=\"NCHW\") -> Tensor",
        tags);
  m.def("batch_box_cox(Tensor data, Tensor lambda1, Tensor lambda2, int min_block_size=256) "
        "-> Tensor", tags);
  m.def("batch_bucketize(Tensor float_features, Tensor indices, Tensor boundaries, "
        "Tensor lengths) -> Tensor", tags);
  m.def("concat_batch_mat_mul_batch_gather(Tensor indices, Tensor[] inputs) -> Tensor", tags);
  m.def("concat_batch_mat_mul_batch_gather_gradient(Tensor indices, Tensor[] inputs, Tensor grad) "
        "-> Tensor[]", tags);
  m.def("batch_bucket_one_hot(Tensor data, Tensor lengths, Tensor boundaries) -> Tensor", tags);
}
