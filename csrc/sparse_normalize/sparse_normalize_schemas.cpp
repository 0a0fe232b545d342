// Schemas of the sparse-normalize family.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(caffe2ops, m) {
  const std::vector<at::Tag> tags{at::Tag::pt2_compliant_tag};
  for (std::string name : {"sparse_normalize", "float16_sparse_normalize"}) {
    m.def((name + "(Tensor param, Tensor indices, Tensor? grad=None, bool use_max_norm=True, "
                  "float norm=1.0) -> Tensor").c_str(),
          tags);
    m.def((name + "_(Tensor(a!) param, Tensor indices, Tensor? grad=None, bool use_max_norm=True, "
                  "float norm=1.0) -> Tensor(a!)").c_str(),
          tags);
  }
}
