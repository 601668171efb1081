// Placeholder entry point; the host issue replaces it.
#include <moni/version.hpp>

#include <cstdio>

int main() {
  std::printf("moni %s\n", MONI_VERSION_STRING);
  return 0;
}
