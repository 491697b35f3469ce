/**
 * `keyward login` opens the authorization URL, which an authorization server chose (issue 12
 * item 8). On Windows it went through `cmd /c start` with only `&` escaped, so `|` and `%VAR%`
 * reached a shell. The argv built for each platform must carry the URL as one argument to a
 * program run without a shell, and a URL that is not plain http(s) must not be opened at all.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { browserCommand } from '../daemon/cli/browser.js';

const HOSTILE = "https://as.example/authorize?a=1&b=2|calc.exe&c=%PATH%&d=%USERPROFILE%&e=^x&state='q'";
const SHELLS = /(^|[\\/])(cmd|cmd\.exe|powershell|pwsh|sh|bash)$/i;

test('Windows: no cmd.exe; rundll32 url.dll,FileProtocolHandler gets the URL as one untouched argument', () => {
  const command = browserCommand(HOSTILE, 'win32', { SystemRoot: 'C:\\Windows' });
  assert.ok(command);
  assert.doesNotMatch(command.file, SHELLS);
  assert.equal(command.file, 'C:\\Windows\\System32\\rundll32.exe');
  assert.deepEqual(command.args, ['url.dll,FileProtocolHandler', new URL(HOSTILE).href]);
  // Inert without a shell: they arrive as the characters they are.
  assert.ok(command.args[1]?.includes('|calc.exe&c=%PATH%&d=%USERPROFILE%'), command.args[1]);
  assert.ok(!command.args.some((a) => a.includes('^&')), 'no cmd-style escaping: no shell reads it');
});

test('macOS and Linux: open / xdg-open with the URL as one argument', () => {
  const href = new URL(HOSTILE).href;
  assert.deepEqual(browserCommand(HOSTILE, 'darwin'), { file: 'open', args: [href] });
  assert.deepEqual(browserCommand(HOSTILE, 'linux'), { file: 'xdg-open', args: [href] });
  assert.deepEqual(browserCommand(HOSTILE, 'freebsd'), { file: 'xdg-open', args: [href] });
});

test('quotes are percent-encoded, so no argument quoting can be broken out of', () => {
  const quoted = 'https://as.example/authorize?x=%22a%20b%22&y=1"';
  for (const platform of ['win32', 'darwin', 'linux'] as const) {
    const command = browserCommand(quoted, platform, {});
    assert.ok(command);
    const url = command.args.at(-1) as string;
    assert.ok(!url.includes('"') && !url.includes(' '), url);
    assert.equal(new URL(url).searchParams.get('x'), '"a b"');
    assert.equal(new URL(url).searchParams.get('y'), '1"');
  }
});

test('a URL with a newline, a control character, or a scheme other than http(s) is not opened', () => {
  for (const url of [
    'https://as.example/authorize?a=1\n&calc.exe',
    'https://as.example/authorize?a=1\r\nb',
    'https://as.example/a\u0000b',
    'https://as.example/a\tb',
    'file:///C:/Windows/System32/calc.exe',
    'javascript:alert(1)',
    'ms-settings:',
    '\\\\evil\\share\\x.exe',
    'not a url',
  ]) {
    for (const platform of ['win32', 'darwin', 'linux'] as const) {
      assert.equal(browserCommand(url, platform, {}), undefined, `${platform}: ${JSON.stringify(url)}`);
    }
  }
});
