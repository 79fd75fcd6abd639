// Logging. The library never prints: anything worth telling goes to a callback the user installs on the
// Context (none by default, so nothing is said).
#pragma once

#include <functional>
#include <string_view>

namespace bimamba {

enum class LogLevel { Debug, Info, Warning };

using LogCallback = std::function<void(LogLevel, std::string_view)>;

}  // namespace bimamba
