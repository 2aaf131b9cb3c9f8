{
  "targets": [
    {
      "target_name": "ucvmfs_tracer",
      "sources": ["addon/tracer.cc", "addon/ptrace_emu.cc", "addon/files.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    },
    {
      "target_name": "ucvmfs_preload",
      "type": "shared_library",
      "sources": ["addon/preload.c"],
      "cflags": ["-O2", "-fPIC", "-Wall", "-Wextra", "-fvisibility=default"],
      "ldflags": ["-Wl,-z,now"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    },
    {
      "target_name": "ucvmfs_front",
      "type": "executable",
      "sources": ["addon/front.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
