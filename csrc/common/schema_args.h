#pragma once
// Conversions of schema argument types the kernels share.
#include <c10/util/string_view.h>

#include <optional>
#include <string>

namespace caffe2ops {

// A schema's `str?` argument as an owned string.
inline std::optional<std::string> optional_string(const std::optional<c10::string_view>& s) {
  return s.has_value() ? std::optional<std::string>(std::string(*s)) : std::nullopt;
}


}  // namespace caffe2ops
