import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyedMutex } from '../daemon/keyed-mutex.js';

test('callers of one key run one at a time, in arrival order', async () => {
  const locks = new KeyedMutex();
  const events: string[] = [];
  let inside = 0;
  const run = (id: number) =>
    locks.runExclusive('a', async () => {
      inside += 1;
      assert.equal(inside, 1, 'two holders at once');
      events.push(`start ${id}`);
      await sleep(5);
      events.push(`end ${id}`);
      inside -= 1;
      return id;
    });
  const results = await Promise.all([run(1), run(2), run(3)]);
  assert.deepEqual(results, [1, 2, 3]);
  assert.deepEqual(events, ['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
});

test('different keys do not wait for each other', async () => {
  const locks = new KeyedMutex();
  let release: () => void = () => {};
  const held = locks.runExclusive('a', () => new Promise<void>((r) => (release = r)));
  assert.equal(locks.isLocked('a'), true);
  // Would hang if 'b' waited for 'a'.
  assert.equal(await locks.runExclusive('b', () => 'b done'), 'b done');
  release();
  await held;
});

test('idle entries are deleted: the map empties once every holder and waiter is gone', async () => {
  const locks = new KeyedMutex();
  const work = Array.from({ length: 50 }, (_, i) => locks.runExclusive(`k${i % 5}`, () => sleep(1)));
  assert.equal(locks.size, 5);
  await Promise.all(work);
  assert.equal(locks.size, 0);
  assert.equal(locks.isLocked('k0'), false);
});

test('a throwing holder releases the lock and its entry', async () => {
  const locks = new KeyedMutex();
  await assert.rejects(
    locks.runExclusive('a', () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(locks.size, 0);
  assert.equal(await locks.runExclusive('a', () => 42), 42);
});

test('a caller arriving while the last holder finishes keeps the entry, and still excludes', async () => {
  const locks = new KeyedMutex();
  let inside = 0;
  const body = async () => {
    inside += 1;
    assert.equal(inside, 1);
    await sleep(2);
    inside -= 1;
  };
  const first = locks.runExclusive('a', body);
  // Queued in the same tick as the first one's release.
  const second = first.then(() => locks.runExclusive('a', body));
  const third = locks.runExclusive('a', body);
  await Promise.all([first, second, third]);
  assert.equal(locks.size, 0);
});
