#!/bin/sh
':' //; f=$0; [ -L "$f" ] && f=$(readlink -f -- "$f"); case $f in */*) ;; *) f=./$f;; esac; d=${f%/*}/..; m=$d/dist/lib/cli/ucvmfs.cjs; [ -f "$m" ] && ! [ "$d/dist/lib/cli/main.js" -nt "$m" ] || m=$0; [ -n "${NODE_EXTRA_CA_CERTS-}" ] && { UCVMFS_DEFERRED_CA_CERTS=$NODE_EXTRA_CA_CERTS; export UCVMFS_DEFERRED_CA_CERTS; unset NODE_EXTRA_CA_CERTS; }; case " $* " in *" exec "*) x=$d/build/Release/ucvmfs_front; [ -x "$x" ] && { for n in 9 8 7 6 5 4 3; do [ -e "/proc/$$/fd/$n" ] || break; n=; done; [ -n "$n" ] && eval "UCVMFS_ENVIRON_FD=$n exec \"\$x\" \"\$m\" \"\$@\" $n<<//E
//\$(\"\$x\" --dropped-environment \$\$ 2>/dev/null)
//E"; exec "$x" "$m" "$@"; };; esac; exec node "$m" "$@"
// `exec` hands the front the variables of this process's environment as it came that a shell such as dash drops,
// those whose names are not names to it (bash's exported functions, `BASH_FUNC_module%%`, which Lmod's `module` is;
// `a.b`): the front itself lists them (in hexadecimal, on a free descriptor from 9 down) and puts them back
// (addon/front.c).
// Both a shell script and a module. As a script (the line above) it runs the CLI's one-file build through its
// starter (dist/lib/cli/ucvmfs.cjs, scripts/bundle-cli.mjs: V8's code cache) unless the ES modules are newer (a
// tsc alone), and these otherwise; equal times (an npm tarball dates every file alike) take the build.
// It starts `exec` through the front (addon/front.c: the caller waits for the command, not for what it leaves
// running, and the signal dispositions the caller gave are recorded before Node resets them); every other
// command goes straight to Node. Node parses every certificate of the system's store at start when
// NODE_EXTRA_CA_CERTS is set (60 ms here, more than the command's own work); the script hands the variable
// over under another name, the CLI puts it back at once for everything it starts, and its https client adds
// those certificates itself (lib/net/tls-trust.ts).
import '../dist/lib/cli/main.js';
