/* A shared object without moni_plugin_entry: refused. */
__attribute__((visibility("default"))) int not_a_plugin(void) { return 42; }
