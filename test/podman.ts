/**
 * Podman for the container tests: the `podman run` options that start a container of the host's own tree on this
 * machine, or why none starts.
 */
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

let podman: string[] | string | undefined;

/**
 * `podman run` options for a container of the host's own tree, under podman's default seccomp profile, or why no
 * container starts on this machine. Probed once with /bin/true: the default runtime first, then runc, because crun
 * refuses a hybrid cgroup host whose cgroup v2 half holds any controller, even with --cgroups=disabled.
 */
export function podmanRun(): string[] | string {
  if (podman !== undefined) return podman;
  // Podman's default rlimits (1048576) may exceed the hard limits, which root cannot raise without
  // CAP_SYS_RESOURCE: the host's hard limits instead, at most 32768 (podman's nproc default, which it applies to
  // itself before it starts the runtime).
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const ulimits = [['nofile', 'Max open files'], ['nproc', 'Max processes']].flatMap(([k, name]) => {
    const hard = Math.min(Number(new RegExp(`^${name}\\s+\\S+\\s+(\\d+)`, 'm').exec(limits)?.[1] ?? Infinity), 32768);
    return ['--ulimit', `${k}=${hard}:${hard}`];
  });
  // No image (no registry is reachable): the host's tree through an overlay (`--rootfs /` itself breaks both
  // runtimes' /sys mounts); the host network, where the test server listens on 127.0.0.1.
  const tried: string[] = [];
  for (const runtime of [[], ['--runtime', 'runc']]) {
    const argv = ['podman', ...runtime, 'run', '--rm', '--network=host', ...ulimits];
    const r = spawnSync(argv[0]!, [...argv.slice(1), '--rootfs', '/:O', '/bin/true'], { encoding: 'utf8', timeout: 120_000 });
    if (r.status === 0) return (podman = argv);
    tried.push(`${argv.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') break;
  }
  return (podman = `podman cannot start a container on this machine (${tried.join('; ')})`);
}
