#pragma once
/// The `alerts:` section (issue 22): sinks and the aggregation window.
/// Internal to config/.

#include "config/yaml_reader.hpp"

namespace pgwarden::config {

/// Reads `alerts:` into `out`, reporting each problem at its position.
void read_alerts(Reader& r, const YAML::Node& node, AlertsConfig& out);

}  // namespace pgwarden::config
