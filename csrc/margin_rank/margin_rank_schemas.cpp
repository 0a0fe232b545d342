// Schemas of the margin-rank family.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(caffe2ops, m) {
  const std::vector<at::Tag> tags{at::Tag::pt2_compliant_tag};
  m.def("margin_ranking_criterion(Tensor X1, Tensor X2, Tensor Y, float margin=1.0) -> Tensor", tags);
  m.def("margin_ranking_criterion_gradient(Tensor X1, Tensor X2, Tensor Y, Tensor dLoss, "
        "float margin=1.0) -> (Tensor dX1, Tensor dX2)", tags);
}
