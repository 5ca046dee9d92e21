import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gatewayFixture, repoYaml } from '../harness/gateway-fixture.ts';

const yaml = (schedules: string, maxConcurrent = 4) =>
  `execution:\n  max_concurrent: ${maxConcurrent}\nrepos:\n${repoYaml('app', `    schedules:\n${schedules}`)}`;

describe('scheduled tasks', () => {
  it('deliver their prompt as a new thread on the chosen channel, and a reply continues it', async () => {
    const f = await gatewayFixture({
      yaml: yaml(
        '      digest:\n        cron: "0 6 * * *"\n        timezone: Europe/Berlin\n        prompt: summarize open issues\n        channel: web\n',
      ),
    });
    try {
      assert.equal(await f.gateway.runSchedule('app', 'digest'), 'started');
      const [sent] = await f.channel.waitForSent(1);
      assert.deepEqual(f.channel.opened, [{ to: undefined, title: 'Scheduled: digest' }]);
      assert.equal(f.executor.runs[0]!.parts[0]!.text, 'summarize open issues');
      const conversation = sent!.conversation!;
      assert.equal(conversation.scheduleId, 'app/digest');
      await f.channel.send('thanks, now fix the first one', { thread: conversation.threadKey });
      await f.channel.waitForSent(2);
      assert.equal(f.executor.runs[1]!.conversation.id, conversation.id);
    } finally {
      await f.close();
    }
  });

  it('skip a run while the previous run of the same schedule is still going', async () => {
    const f = await gatewayFixture({
      yaml: yaml(
        '      slow:\n        cron: "0 6 * * *"\n        prompt: hang for a while\n        channel: web\n',
      ),
    });
    try {
      assert.equal(await f.gateway.runSchedule('app', 'slow'), 'started');
      await f.executor.waitForRuns(1);
      assert.equal(await f.gateway.runSchedule('app', 'slow'), 'skipped_running');
      f.executor.finishAll();
      await f.channel.waitForSent(1);
      assert.equal(await f.gateway.runSchedule('app', 'slow'), 'started');
      await f.executor.waitForRuns(2);
      f.executor.finishAll();
    } finally {
      await f.close();
    }
  });

  it('use the output of a command as the prompt and do nothing when it prints nothing', async () => {
    const f = await gatewayFixture({
      yaml: yaml(
        '      from_cmd:\n        cron: "0 6 * * *"\n        command: "echo dependency foo is outdated"\n        channel: web\n' +
          '      empty:\n        cron: "0 6 * * *"\n        command: "true"\n        channel: web\n' +
          '      broken:\n        cron: "0 6 * * *"\n        command: "exit 3"\n        channel: web\n',
      ),
    });
    try {
      assert.equal(await f.gateway.runSchedule('app', 'empty'), 'nothing_to_do');
      assert.equal(await f.gateway.runSchedule('app', 'broken'), 'failed');
      assert.equal(await f.gateway.runSchedule('app', 'from_cmd'), 'started');
      await f.channel.waitForSent(1);
      assert.equal(f.executor.runs.length, 1);
      assert.equal(f.executor.runs[0]!.parts[0]!.text, 'dependency foo is outdated');
      assert.equal(await f.gateway.runSchedule('app', 'nope'), 'unknown');
    } finally {
      await f.close();
    }
  });

  it('fire on their cron expression', async () => {
    const f = await gatewayFixture({
      yaml: yaml(
        '      every_second:\n        cron: "* * * * * *"\n        prompt: tick\n        channel: web\n',
      ),
    });
    try {
      await f.executor.waitForRuns(1, 5000);
      assert.equal(f.executor.runs[0]!.parts[0]!.text, 'tick');
    } finally {
      await f.close();
    }
  });
});
