// toml++'s implementation, compiled once into the host (the headers are
// used with TOML_HEADER_ONLY=0 everywhere else). Linked statically instead
// of libtomlplusplus.so: only the parser code the host uses is in the binary,
// without the shared library's own symbol tables and relocations (~0.2 MiB
// resident in a running host).
#define TOML_EXCEPTIONS 1
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
