// A server of the caller's for tests that stop, kill and restart it (the reliability tests of
// Kafka and Pulsar): a child of the calling process (not detached, so it dies with the test
// run), on ports and a dir of its own, so the shared services are never touched.

import { spawn } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import { cmdline, listenerPid, say, sleep, tailFile } from './process.ts';

export interface PrivateServer {
  readonly dir: string;
  /** The server's output, appended across restarts. */
  readonly log: string;
  /** Pid of the running server, if any. */
  pid(): number | undefined;
  /** Starts the server on its existing data (after `stop`); resolves once it serves. */
  start(): Promise<void>;
  /** Sends `signal` (default SIGTERM: a controlled shutdown) and waits for the process to exit. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
  /** `stop(signal)`, then `start()`. */
  restart(signal?: NodeJS.Signals): Promise<void>;
  /** Kills the server if it runs and removes `dir`. Safe to call more than once. */
  destroy(): Promise<void>;
}

export interface PrivateServerSpec {
  /** For messages: "private kafka on 41234". */
  readonly label: string;
  /** Ports it listens on: refused when another process holds one. */
  readonly ports: readonly number[];
  readonly dir: string;
  readonly log: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Resolves once the server serves; throws while it does not yet. */
  readonly probe: () => Promise<void>;
  readonly readyTimeoutMs: number;
}

/** Starts the server and resolves once its probe passes. */
export async function startPrivateServer(spec: PrivateServerSpec): Promise<PrivateServer> {
  const { label, dir, log } = spec;
  for (const p of spec.ports) {
    const holder = listenerPid(p);
    if (holder !== undefined) throw new Error(`${label}: port ${p} is held by pid ${holder} (${cmdline(holder)})`);
  }
  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<void> = Promise.resolve();
  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  const start = async (): Promise<void> => {
    if (alive()) throw new Error(`${label} already runs (pid ${child?.pid})`);
    const fd = openSync(log, 'a');
    try {
      child = spawn(spec.command, [...spec.args], { cwd: dir, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const proc = child;
    exited = new Promise<void>((resolveExit) => {
      proc.once('exit', () => resolveExit());
      proc.once('error', (e) => {
        say(`${label}: ${e.message}`);
        resolveExit();
      });
    });
    const deadline = Date.now() + spec.readyTimeoutMs;
    let lastError = 'no answer yet';
    for (;;) {
      try {
        await spec.probe();
        return;
      } catch (e) {
        lastError = e instanceof Error ? e.message : String(e);
      }
      if (!alive()) throw new Error(`${label} exited before serving (last probe: ${lastError})\n${tailFile(log, 30)}`);
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        await exited;
        throw new Error(`${label} not serving after ${spec.readyTimeoutMs / 1000} s (last probe: ${lastError})\n${tailFile(log, 30)}`);
      }
      await sleep(250);
    }
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 60_000): Promise<void> => {
    if (!alive()) return;
    child!.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    if (!stopped) {
      say(`${label}: no exit within ${timeoutMs} ms of ${signal}: SIGKILL`);
      child!.kill('SIGKILL');
      await exited;
    }
  };

  await start();
  return {
    dir,
    log,
    pid: () => (alive() ? child!.pid : undefined),
    start,
    stop,
    async restart(signal: NodeJS.Signals = 'SIGTERM') {
      await stop(signal);
      await start();
    },
    async destroy() {
      await stop('SIGKILL', 30_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
