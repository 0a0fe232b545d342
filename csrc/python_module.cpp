// The Python entry point. It only exists so that `from torch_caffe2ops import _C` loads the
// library, whose static initialisers register the ops; nothing is exposed through Python's
// C API, which keeps the library free of pybind11 and usable under the stable ABI.
#include <Python.h>

PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT,
      "_C",
      "torch_caffe2ops native library: registers torch.ops.caffe2ops.*",
      -1,
      nullptr,
  };
  return PyModule_Create(&module_def);
}
