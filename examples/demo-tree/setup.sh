# Source this file to use the demo software stack.
DEMO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
export PATH="$DEMO_ROOT/bin:$PATH"
export PYTHONPATH="$DEMO_ROOT/lib/python${PYTHONPATH:+:$PYTHONPATH}"
