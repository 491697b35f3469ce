/** Describes the machine a benchmark ran on, for the head of results.md. */
import fs from 'node:fs';
import os from 'node:os';

/** The machine, the runtime and the moment. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  date: string;
  /** 1-minute load average when the run started: above ~0.5 the machine was not idle. */
  loadAtStart: number;
  /** Other processes using more than 5% CPU when the run started (name and share). */
  busyProcesses: string[];
}

/** Reads the machine's description. */
export async function describeMachine(): Promise<MachineInfo> {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    date: new Date().toISOString(),
    loadAtStart: os.loadavg()[0] ?? Number.NaN,
    busyProcesses: await busyProcesses(),
  };
}

/** Lists processes (other than this one) that used more than 5% of a core over the last 0.5 s. */
async function busyProcesses(): Promise<string[]> {
  if (!fs.existsSync('/proc/self/stat')) return [];
  const read = () => {
    const times = new Map<number, { name: string; ticks: number }>();
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        times.set(Number(entry), { name, ticks: Number(fields[11]) + Number(fields[12]) });
      } catch {
        // gone
      }
    }
    return times;
  };
  const before = read();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = read();
  const busy: string[] = [];
  for (const [pid, { name, ticks }] of after) {
    const share = (ticks - (before.get(pid)?.ticks ?? ticks)) / 50; // 100 ticks/s over 0.5 s
    if (pid !== process.pid && share > 0.05) busy.push(`${name} ${Math.round(share * 100)}%`);
  }
  return busy;
}
