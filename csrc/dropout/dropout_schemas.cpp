// Schemas of the dropout family.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(caffe2ops, m) {
  m.def("dropout(Tensor X, float ratio=0.5, bool is_test=False, Generator? generator=None) "
        "-> (Tensor Y, Tensor mask)",
        {at::Tag::nondeterministic_seeded, at::Tag::pt2_compliant_tag});
  m.def("dropout_gradient(Tensor dY, Tensor? mask=None, float ratio=0.5, bool is_test=False) "
        "-> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def("cudnn_dropout(Tensor X, float ratio=0.5, bool is_test=False, Generator? generator=None) "
        "-> (Tensor Y, Tensor reserve_space)",
        {at::Tag::nondeterministic_seeded, at::Tag::pt2_compliant_tag});
  m.def("cudnn_dropout_gradient(Tensor dY, Tensor reserve_space, float ratio=0.5, "
        "bool is_test=False) -> Tensor",
        {at::Tag::pt2_compliant_tag});
}
