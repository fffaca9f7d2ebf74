#include "proxy/ops/build_info.hpp"

namespace pgwarden::proxy {

std::string_view version() noexcept { return PGWARDEN_VERSION; }

}  // namespace pgwarden::proxy
