// Schemas of the concat/split family.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(caffe2ops, m) {
  const std::vector<at::Tag> tags{at::Tag::pt2_compliant_tag};
  for (const char* name : {"concat", "depth_concat"}) {
    m.def((std::string(name) +
           "(Tensor[] inputs, int? axis=None, str? order=None, bool add_axis=False) "
           "-> (Tensor output, Tensor split_info)").c_str(),
          tags);
  }
  m.def("concat_gradient(Tensor grad_output, Tensor split_info, int? axis=None, str? order=None, "
        "bool add_axis=False) -> Tensor[]", tags);
  m.def("split_gradient(Tensor?[] grad_outputs, SymInt[] split_sizes, int axis, "
        "bool add_axis=False) -> Tensor", tags);
}

// The splits' output sizes can come from tensor values, so their fake kernels are Python
// (new_dynamic_size); naming the module tells PyTorch where they are.
TORCH_LIBRARY_FRAGMENT(caffe2ops, m) {
  m.set_python_module("torch_caffe2ops._fake");
  const std::vector<at::Tag> tags{at::Tag::pt2_compliant_tag};
  for (const char* name : {"split", "depth_split"}) {
    m.def((std::string(name) +
           "(Tensor input, Tensor? split_tensor=None, int[] split=[], int? axis=None, "
           "str? order=None, bool add_axis=False, int num_outputs=-1) -> Tensor[]").c_str(),
          tags);
  }
  m.def("split_by_lengths(Tensor input, Tensor lengths, int num_outputs, int? axis=None, "
        "str? order=None, bool use_scaling_lengths=False) -> Tensor[]", tags);
}
