#pragma once
// The size of cudnn_dropout's reserve space (spec 4.3) is cuDNN's own function of the dtype and
// the element count; the CUDA kernel and the Meta kernel both ask cuDNN for it.
#include <c10/core/ScalarType.h>

#include <cstdint>

namespace caffe2ops {

// cudnnDropoutGetReserveSpaceSize for X described as (numel, 1, 1, 1); numel > 0.
int64_t cudnn_dropout_reserve_bytes(at::ScalarType dtype, int64_t numel);

}  // namespace caffe2ops
