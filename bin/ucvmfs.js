#!/bin/sh
':' //; case " $* " in *" exec "*) f=$0; [ -L "$f" ] && f=$(readlink -f -- "$f"); d=${f%/*}/../build/Release/ucvmfs_front; [ -x "$d" ] && exec "$d" "$0" "$@";; esac; exec node "$0" "$@"
// Both a shell script and a module. As a script (the line above) it starts `exec` through the front
// (addon/front.c: the caller waits for the command, not for what it leaves running, and the signal dispositions
// the caller gave are recorded before Node resets them); every other command goes straight to Node.
import '../dist/lib/cli/main.js';
