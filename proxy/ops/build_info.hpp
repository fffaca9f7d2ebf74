#pragma once
/// What this binary is: its version, for --version, logs and pgwarden_build_info.

#include <string_view>

namespace pgwarden::proxy {

std::string_view version() noexcept;

}  // namespace pgwarden::proxy
