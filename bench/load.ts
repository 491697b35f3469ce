/**
 * A closed-loop load generator: `inFlight` workers each await one operation after another for a
 * fixed time; latencies after the warm-up are recorded. It also measures the CPU both sides used,
 * which tells whether the daemon or the load generator was the bottleneck.
 */
import { readCpuMs } from '../test/faults/support/proc-stats.js';
import { type LatencySummary, Samples } from './stats.js';

/** What one run of the loop produced. */
export interface LoadResult {
  inFlight: number;
  latency: LatencySummary;
  /** Operations completed per second in the measured window. */
  throughput: number;
  errors: number;
  firstError: string | undefined;
  /** Measured operations slower than `slowMs`. */
  slow: number;
  seconds: number;
  /** CPU of the server process over the measured window, as a share of one core (1 = 100%). */
  serverCpu: number | undefined;
  /** CPU of this process (the load generator) over the measured window, as a share of one core. */
  clientCpu: number;
}

/** How the loop runs. */
export interface LoadOptions {
  inFlight: number;
  durationMs: number;
  warmupMs: number;
  /** The server's pid, to measure its CPU (Linux). */
  serverPid?: number;
  /** A pause after each operation, for callers that ask now and then rather than flat out. */
  pauseMs?: number;
  /** Count the measured operations slower than this (default 50 ms). */
  slowMs?: number;
}

/** Runs `op` with `inFlight` workers for warm-up + duration and summarises the measured part. */
export async function closedLoop(
  op: (worker: number) => Promise<unknown>,
  options: LoadOptions,
): Promise<LoadResult> {
  const samples = new Samples();
  const now = () => Number(process.hrtime.bigint());
  const start = now();
  const measureFrom = start + options.warmupMs * 1e6;
  const end = measureFrom + options.durationMs * 1e6;
  let errors = 0;
  let slow = 0;
  const slowNs = (options.slowMs ?? 50) * 1e6;
  let firstError: string | undefined;
  let serverCpuStart: number | undefined;
  let clientCpuStart: NodeJS.CpuUsage | undefined;
  let measuring = false;

  const startMeasuring = () => {
    measuring = true;
    clientCpuStart = process.cpuUsage();
    if (options.serverPid !== undefined) serverCpuStart = safeCpu(options.serverPid);
  };
  const warmupTimer = setTimeout(startMeasuring, options.warmupMs);

  const worker = async (index: number) => {
    for (;;) {
      const t0 = now();
      if (t0 >= end) return;
      try {
        await op(index);
        if (t0 >= measureFrom) {
          const took = now() - t0;
          samples.push(took);
          if (took > slowNs) slow += 1;
        }
      } catch (err) {
        if (t0 >= measureFrom) {
          errors += 1;
          firstError ??= (err as Error).message;
        }
      }
      if (options.pauseMs !== undefined) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, (_, i) => worker(i)));
  clearTimeout(warmupTimer);
  if (!measuring) startMeasuring();
  const seconds = options.durationMs / 1000;
  const clientCpu = process.cpuUsage(clientCpuStart);
  const serverCpuEnd = options.serverPid !== undefined ? safeCpu(options.serverPid) : undefined;
  return {
    inFlight: options.inFlight,
    latency: samples.summarize(),
    throughput: samples.length / seconds,
    errors,
    firstError,
    slow,
    seconds,
    serverCpu:
      serverCpuStart !== undefined && serverCpuEnd !== undefined
        ? (serverCpuEnd - serverCpuStart) / 1000 / seconds
        : undefined,
    clientCpu: (clientCpu.user + clientCpu.system) / 1e6 / seconds,
  };
}

function safeCpu(pid: number): number | undefined {
  try {
    return readCpuMs(pid);
  } catch {
    return undefined;
  }
}
