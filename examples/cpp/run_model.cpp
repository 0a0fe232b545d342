// Loads a TorchScript model that calls caffe2ops ops (examples/cpp/model.py), runs forward
// and backward from C++, and prints every output and input gradient as
//   <name> <shape...> : <values...>
// Usage: run_model model.pt
#include <torch/script.h>

#include <iomanip>
#include <iostream>

static void print(const std::string& name, const torch::Tensor& t) {
  auto v = t.detach().to(torch::kDouble).contiguous();
  std::cout << name;
  for (auto s : v.sizes()) std::cout << ' ' << s;
  std::cout << " :" << std::setprecision(17);
  for (int64_t i = 0; i < v.numel(); ++i) std::cout << ' ' << v.data_ptr<double>()[i];
  std::cout << '\n';
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: run_model model.pt\n";
    return 2;
  }
  torch::jit::Module model = torch::jit::load(argv[1]);
  auto dd = torch::TensorOptions().dtype(torch::kDouble);
  auto X = (torch::arange(24, dd).reshape({4, 3, 2}) / 10).requires_grad_();
  auto indices = torch::tensor({3, 1, 0, 2}, torch::kInt);
  auto A = (torch::arange(24, dd).reshape({2, 3, 4}) / 7 - 1).requires_grad_();
  auto B = (torch::arange(40, dd).reshape({2, 5, 4}) / 11 - 1).requires_grad_();

  auto outputs = model.forward({X, indices, A, B}).toTensorList();
  torch::Tensor loss = torch::zeros({}, dd);
  for (size_t i = 0; i < outputs.size(); ++i) {
    torch::Tensor o = outputs[i];
    print("output" + std::to_string(i), o);
    loss = loss + (o * torch::linspace(0.5, 1.5, o.numel(), dd).reshape(o.sizes())).sum();
  }
  loss.backward();
  print("grad_X", X.grad());
  print("grad_A", A.grad());
  print("grad_B", B.grad());
  return 0;
}
