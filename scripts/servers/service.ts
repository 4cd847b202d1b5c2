// What every local backend is to scripts/services: its name, ports, dirs and lifecycle hooks,
// and where they all keep their files. The lifecycle that drives these hooks (reuse a
// serving service, wait for one that starts, install and start the rest) is in index.ts.

import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type ServiceName = 'kafka' | 'pulsar' | 'redis' | 'redis-cluster' | 'postgres';
export const SERVICE_NAMES: readonly ServiceName[] = ['kafka', 'pulsar', 'redis', 'redis-cluster', 'postgres'];

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Cache and data folder; git-ignored. */
export const SERVICES_DIR = process.env['EVENTFOLD_SERVICES_DIR'] ?? join(REPO_ROOT, '.services');
export const BACKENDS_DIR = join(REPO_ROOT, 'scripts', 'backends');

export interface Service {
  name: ServiceName;
  /** Ports the service listens on, the client port first. */
  ports: number[];
  dir: string;
  log: string;
  readyTimeoutMs: number;
  install(): Promise<void>;
  start(): Promise<void>;
  /** Resolves when the service really serves; rejects with the reason otherwise. */
  probe(): Promise<void>;
  /** Pid of the process we started (from our pid file), when it is alive. */
  ownPid(): number | undefined;
  /**
   * Services made of several processes (redis-cluster): every live process we started. Their
   * ownPid() answers only when all of them run, so a partly running service gets the missing
   * ones started by start(). Default: [ownPid()].
   */
  ownPids?(): number[];
  /** Every log of a multi-process service, `log` first. Default: [log]. */
  logs?(): string[];
  /** Stops the service (a multi-process service: all of its processes). */
  stop(pid: number): Promise<void>;
}
