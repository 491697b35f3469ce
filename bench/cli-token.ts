/**
 * Section 3: `keyward token <name>` as a whole process (what a shell script or an MCP client's
 * `command` pays), beside `oidc-token <account>` from Debian's oidc-agent for an account on the
 * same oidc-provider, and beside the floors: starting Node with nothing to do, and `/bin/true`.
 * Both agents hold a cached 1-hour access token, so no refresh is timed.
 */

import { addOAuthCredential, loginCredential } from '../test/faults/support/keyward-oauth.js';
import { CLI } from '../test/helpers/daemon-process.js';
import { startBenchDaemon } from './keyward-process.js';
import { type OidcAgent, oidcAgentVersion, startOidcAgent } from './oidc-agent.js';
import { startOidcProcess } from './oidc-process.js';
import { type SectionReport, table } from './report.js';
import { type TimedRun, timeRepeatedly } from './spawn-timing.js';
import { summarize } from './stats.js';

/** How many timed runs of each command. */
export interface CliTokenOptions {
  runs: number;
  warmup: number;
}

interface Series {
  subject: string;
  times: number[] | undefined;
  note: string;
}

const printsToken = (run: TimedRun) => run.code === 0 && /^\S{20,}\n$/.test(run.stdout);

/** Runs the section. */
export async function benchCliToken(options: CliTokenOptions): Promise<SectionReport> {
  const server = await startOidcProcess({ accessTokenTtl: 3600 });
  const keyward = await startBenchDaemon();
  let agent: OidcAgent | undefined;
  let agentProblem: string | undefined;
  try {
    await addOAuthCredential(keyward.socket, server, 'bench');
    await loginCredential(keyward.socket, server, 'bench');
    if (oidcAgentVersion() === undefined) {
      agentProblem = 'oidc-agent-cli is not installed on this machine (apt-get install -y oidc-agent-cli)';
    } else {
      try {
        agent = await startOidcAgent(server, 'bench');
      } catch (err) {
        agentProblem = `oidc-agent could not be set up: ${(err as Error).message}`;
      }
    }
    const { runs, warmup } = options;
    const series: Series[] = [
      {
        subject: '`/bin/true` (process spawn floor)',
        times: await timeRepeatedly('/bin/true', [], process.env, runs, warmup, (r) => r.code === 0),
        note: '',
      },
      {
        subject: '`node -e ""` (Node start-up floor)',
        times: await timeRepeatedly(
          process.execPath,
          ['-e', ''],
          process.env,
          runs,
          warmup,
          (r) => r.code === 0,
        ),
        note: '',
      },
      {
        subject: '`keyward token bench`',
        times: await timeRepeatedly(
          process.execPath,
          [CLI, 'token', 'bench'],
          keyward.home.env,
          runs,
          warmup,
          printsToken,
        ),
        note: 'Node + CLI modules + one socket request',
      },
      {
        subject: agent ? `\`oidc-token bench\` (oidc-agent ${agent.version})` : '`oidc-token`',
        times: agent
          ? await timeRepeatedly('oidc-token', ['bench'], agent.env, runs, warmup, printsToken)
          : undefined,
        note: agent ? 'C client + one agent socket request' : (agentProblem ?? ''),
      },
    ];
    return render(series, options);
  } finally {
    await agent?.close();
    await keyward.close();
    await server.close();
  }
}

function render(series: Series[], options: CliTokenOptions): SectionReport {
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const rows = series.map((s) => {
    if (s.times === undefined) return [s.subject, 'n/a', 'n/a', 'n/a', s.note];
    const l = summarize(s.times.map((t) => t * 1e6));
    return [s.subject, ms(l.p50Us / 1000), ms(l.p90Us / 1000), ms(l.maxUs / 1000), s.note];
  });
  const keyward = series[2]?.times;
  const agent = series[3]?.times;
  const nodeFloor = series[1]?.times;
  const p50 = (t: number[] | undefined) =>
    t === undefined ? Number.NaN : summarize(t.map((v) => v * 1e6)).p50Us / 1000;
  const body = [
    `${options.runs} timed runs of each command, one after another, after ${options.warmup} untimed ones; ` +
      'wall time from spawn to exit. With so few runs, p90 and max stand in for p99.',
    '',
    table(['command', 'p50', 'p90', 'max', 'note'], rows),
    '',
    agent === undefined
      ? `oidc-agent was not measured: ${series[3]?.note}.`
      : `keyward token / oidc-token (p50): ${(p50(keyward) / p50(agent)).toFixed(1)}×; ` +
        `keyward token above the bare Node start-up (p50): ${(p50(keyward) - p50(nodeFloor)).toFixed(1)} ms.`,
  ].join('\n');
  return {
    title: '`keyward token` (whole process) against oidc-agent',
    body,
    targets: [],
    raw: series,
  };
}
