/* The ABI header must compile as plain C (plugins in C or other languages). */
#include <moni/plugin_abi.h>

int moni_abi_c_check(void) {
  moni_plugin_descriptor d = {0};
  d.struct_size = sizeof d;
  return (int)d.struct_size + MONI_ABI_MAJOR;
}
