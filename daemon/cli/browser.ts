/**
 * Opening the login URL in the user's browser. The URL comes from the authorization server's
 * metadata, so it is hostile input: it is passed as one argument to a program started without a
 * shell (no `cmd /c start`, where `|`, `&` and `%VAR%` would be interpreted), and only an
 * `http(s)` URL with no whitespace or control characters is opened at all.
 */
import { spawn } from 'node:child_process';

/** A program and its arguments, run without a shell. */
export interface LaunchCommand {
  file: string;
  args: string[];
}

/** Tells whether `url` holds whitespace or a control character, which no well-formed URL has. */
function hasUnsafeCharacter(url: string): boolean {
  for (const char of url) {
    const code = char.codePointAt(0) ?? 0;
    if (code <= 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}

/** Returns the URL to hand to a browser (WHATWG-serialised, quotes encoded), or undefined to refuse it. */
export function launchableUrl(url: string): string | undefined {
  if (hasUnsafeCharacter(url)) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  // file:, javascript: or a registered handler (ms-settings:, ...) would start something else.
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return undefined;
  // The serialiser percent-encodes quotes, so no argument quoting downstream can be broken.
  return parsed.href.replaceAll('"', '%22');
}

/**
 * Returns the command that opens `url` on `platform`, or undefined when the URL is refused.
 * Windows: `rundll32.exe url.dll,FileProtocolHandler <url>` from System32 (an absolute path, so
 * no program of the same name in the working directory or on PATH is started instead).
 */
export function browserCommand(
  url: string,
  platform: NodeJS.Platform = process.platform,
  env: Record<string, string | undefined> = process.env,
): LaunchCommand | undefined {
  const safe = launchableUrl(url);
  if (safe === undefined) return undefined;
  if (platform === 'darwin') return { file: 'open', args: [safe] };
  if (platform === 'win32') {
    const systemRoot = env.SystemRoot ?? env.SYSTEMROOT ?? 'C:\\Windows';
    return {
      file: `${systemRoot}\\System32\\rundll32.exe`,
      args: ['url.dll,FileProtocolHandler', safe],
    };
  }
  return { file: 'xdg-open', args: [safe] };
}

/** Opens a URL in the user's browser; returns false when it is refused or no opener could be started. */
export function openBrowser(url: string): Promise<boolean> {
  const command = browserCommand(url);
  if (command === undefined) return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      const child = spawn(command.file, command.args, { stdio: 'ignore', detached: true, shell: false });
      child.once('error', () => resolve(false));
      child.once('spawn', () => {
        child.unref();
        resolve(true);
      });
    } catch {
      resolve(false);
    }
  });
}
